// Package provision is the one place that writes (and reads back) the HSS's
// provisioned data in the schema of /migrations: subscribers (IMSU, IMPI
// with its authentication data, IMPUs in implicit registration sets,
// barring), service profiles, iFCs, shared iFC sets, application servers
// with their Sh permissions, S-CSCFs with their capabilities, and the
// operator requests the running HSS carries out (hss_command). Every
// operation runs in one transaction. imsctl (App) and the HSS's REST API
// and web console (hss/api) both call it; neither writes SQL of its own.
package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the operations run on: a *pgx.Conn, a *pgxpool.Pool or a
// pgx.Tx (whose Begin opens a savepoint).
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrorKind says what kind of operator error a UserError is.
type ErrorKind int

// Kinds of UserError (the API answers 422, 404 and 409).
const (
	Invalid  ErrorKind = iota // the input is wrong
	NotFound                  // the object named does not exist
	Conflict                  // it already exists, or is still in use
)

// UserError is an error in the operator's input (as opposed to a database
// failure). Field names the offending input as a JSON pointer into the
// object written ("/impus/1/identity", "/k"), "" when no single field is
// at fault.
type UserError struct {
	Kind  ErrorKind
	Field string
	Msg   string
}

func (e *UserError) Error() string { return e.Msg }

func userErr(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

func fieldErr(field, format string, args ...any) error {
	return &UserError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func notFound(field, format string, args ...any) error {
	return &UserError{Kind: NotFound, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) error {
	return &UserError{Kind: Conflict, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// IsNotFound reports whether err is a UserError of kind NotFound.
func IsNotFound(err error) bool {
	var ue *UserError
	return errors.As(err, &ue) && ue.Kind == NotFound
}

// friendly turns constraint violations into UserErrors.
func friendly(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return conflict("", "already exists (%s)", pe.Detail)
		case "23503":
			return conflict("", "still in use or refers to something missing (%s)", firstNonEmpty(pe.Detail, pe.Message))
		case "23514":
			return userErr("invalid value (constraint %s)", pe.ConstraintName)
		}
	}
	return err
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

// inTx runs fn in one transaction on db; constraint violations become
// UserErrors.
func inTx(ctx context.Context, db DB, fn func(pgx.Tx) error) error {
	return friendly(pgx.BeginFunc(ctx, db, fn))
}

// Check is called by Replace and Delete operations inside their
// transaction with the object as it is now (its row locked), before
// anything is written: an error (e.g. an If-Match precondition that
// failed) aborts the operation. nil means no check.
type Check[T any] func(current T) error

// ListOptions pages and filters a list. Lists are ordered by the object's
// key (IMPI, name, id); After is the last key of the previous page.
type ListOptions struct {
	After string // key to continue after ("" from the start)
	Limit int    // at most this many (0: DefaultLimit; capped at MaxLimit)
	Query string // case-insensitive substring of the key (and, for subscribers, of an IMPU)
}

// Page sizes of ListOptions.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

func (o ListOptions) limit() int {
	switch {
	case o.Limit <= 0:
		return DefaultLimit
	case o.Limit > MaxLimit:
		return MaxLimit
	}
	return o.Limit
}

// likePattern returns an ILIKE pattern matching q anywhere ("%" for "").
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

func isSIPURI(s string) bool {
	l := strings.ToLower(s)
	return (strings.HasPrefix(l, "sip:") || strings.HasPrefix(l, "sips:")) && len(s) > strings.Index(s, ":")+1 &&
		!strings.ContainsAny(s, " \t\r\n")
}

// object ties one kind of provisioned object to the generic transaction
// shapes below: its table, the key column, its name in messages, and how
// to read one.
type object[T any] struct {
	table, column, what string
	get                 func(ctx context.Context, db DB, key string) (T, error)
}

// replace runs, in one transaction: lock the row, check the stored object,
// write (given the row id), and returns the object as stored afterwards.
func (o object[T]) replace(ctx context.Context, db DB, key string, check Check[T], write func(tx pgx.Tx, id int64) error) (out T, err error) {
	err = inTx(ctx, db, func(tx pgx.Tx) error {
		id, err := o.locked(ctx, tx, key, check)
		if err != nil {
			return err
		}
		if err := write(tx, id); err != nil {
			return err
		}
		out, err = o.get(ctx, tx, key)
		return err
	})
	return out, err
}

// remove locks the row, checks the stored object and deletes the row
// (after del, when given, which may refuse).
func (o object[T]) remove(ctx context.Context, db DB, key string, check Check[T], del func(tx pgx.Tx, id int64) error) error {
	return inTx(ctx, db, func(tx pgx.Tx) error {
		id, err := o.locked(ctx, tx, key, check)
		if err != nil {
			return err
		}
		if del != nil {
			if err := del(tx, id); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM `+o.table+` WHERE id = $1`, id)
		return err
	})
}

// create runs write and returns the object as stored.
func (o object[T]) create(ctx context.Context, db DB, key string, write func(pgx.Tx) error) (out T, err error) {
	err = inTx(ctx, db, func(tx pgx.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		out, err = o.get(ctx, tx, key)
		return err
	})
	return out, err
}

// locked locks the row whose key column is key (NotFound when none) and
// hands the stored object to check.
func (o object[T]) locked(ctx context.Context, tx pgx.Tx, key string, check Check[T]) (id int64, err error) {
	err = tx.QueryRow(ctx, `SELECT id FROM `+o.table+` WHERE `+o.column+`::text = $1 FOR UPDATE`, key).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, notFound("/"+o.column, "%s %s does not exist", o.what, key)
	}
	if err != nil || check == nil {
		return id, err
	}
	cur, err := o.get(ctx, tx, key)
	if err != nil {
		return id, err
	}
	return id, check(cur)
}

// oneOf returns the single item a list query found, or NotFound.
func oneOf[T any](items []T, err error, what, key string) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if len(items) == 0 {
		return zero, notFound("", "%s %s does not exist", what, key)
	}
	return items[0], nil
}

// masterDetail reads a page of objects and their detail rows: master runs
// masterSQL (LIMIT limit+1 appended) and scan makes an object and its row
// id of each row; detailSQL ($1: the page's ids) returns rows whose
// detail scan gives the id of their object and what to add to it.
func masterDetail[T any](ctx context.Context, db DB, masterSQL string, args []any, limit int,
	scan func(pgx.Rows) (T, int64, error), detailSQL string, detail func(pgx.Rows) (int64, func(*T), error)) ([]T, bool, error) {
	rows, err := db.Query(ctx, masterSQL+fmt.Sprintf(" LIMIT %d", limit+1), args...)
	if err != nil {
		return nil, false, err
	}
	var ids []int64
	out := []T{}
	for rows.Next() {
		x, id, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, false, err
		}
		ids = append(ids, id)
		out = append(out, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out, ids = out[:limit], ids[:limit]
	}
	if len(ids) == 0 {
		return out, more, nil
	}
	index := map[int64]int{}
	for i, id := range ids {
		index[id] = i
	}
	rows, err = db.Query(ctx, detailSQL, ids)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		id, add, err := detail(rows)
		if err != nil {
			return nil, false, err
		}
		add(&out[index[id]])
	}
	return out, more, rows.Err()
}
