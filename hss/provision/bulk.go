package provision

// Bulk import and export of subscribers as CSV, at PostgreSQL speed: the
// rows are checked in Go while they stream into a staging table with COPY,
// and then written with a few set-based statements, all in one
// transaction (all or nothing).

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CSVColumns are the columns ImportCSV understands (header names).
// Multi-valued cells (impu, barred, auth_schemes) are separated by spaces.
var CSVColumns = []string{"impi", "impu", "imsu", "k", "op", "opc", "amf", "sqn", "password", "realm", "auth_schemes", "profile", "scscf", "barred"}

// csvReader reads the subscriber rows of a CSV file.
type csvReader struct {
	cr   *csv.Reader
	col  map[string]int
	line int
}

func newCSVReader(r io.Reader) (*csvReader, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fieldErr("/line/1", "line 1: cannot read the header row: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, k := range CSVColumns {
			known = known || k == h
		}
		if !known {
			return nil, fieldErr("/line/1", "line 1: unknown column %q (known: %s)", h, strings.Join(CSVColumns, ", "))
		}
		col[h] = i
	}
	for _, need := range []string{"impi", "impu"} {
		if _, ok := col[need]; !ok {
			return nil, fieldErr("/line/1", "line 1: the header has no %s column", need)
		}
	}
	return &csvReader{cr: cr, col: col}, nil
}

// next returns the next subscriber, its line, or io.EOF. Errors name the line.
func (r *csvReader) next() (Subscriber, int, error) {
	for {
		rec, err := r.cr.Read()
		if err == io.EOF {
			return Subscriber{}, 0, io.EOF
		}
		line, _ := r.cr.FieldPos(0)
		r.line = line
		if err != nil {
			return Subscriber{}, line, lineErr(line, userErr("%v", err))
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		get := func(k string) string {
			if i, ok := r.col[k]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		s := Subscriber{IMPI: get("impi"), IMPUs: strings.Fields(get("impu")), IMSU: get("imsu"), K: get("k"),
			OP: get("op"), OPc: get("opc"), AMF: get("amf"), Password: get("password"), Realm: get("realm"),
			Profile: get("profile"), SCSCF: get("scscf"), Barred: strings.Fields(get("barred"))}
		if v := get("sqn"); v != "" {
			if s.SQN, err = strconv.ParseUint(v, 0, 64); err != nil {
				return s, line, lineErr(line, fieldErr("/sqn", "sqn %q is not a number", v))
			}
		}
		if v := get("auth_schemes"); v != "" {
			s.AuthSchemes = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		}
		return s, line, nil
	}
}

// lineErr prefixes a UserError with its CSV line (Field "/line/N" plus
// the column).
func lineErr(line int, err error) error {
	var ue *UserError
	if errors.As(err, &ue) {
		return &UserError{Kind: ue.Kind, Field: fmt.Sprintf("/line/%d%s", line, ue.Field), Msg: fmt.Sprintf("line %d: %s", line, ue.Msg)}
	}
	return fmt.Errorf("line %d: %w", line, err)
}

// stagingSQL creates the staging table; the ids of the new IMPI and
// implicit registration set of each row come from the real tables'
// sequences as the rows arrive.
const stagingSQL = `CREATE TEMP TABLE import_subscriber (
	line integer NOT NULL,
	impi text NOT NULL,
	imsu text NOT NULL,
	imsu_first boolean NOT NULL,
	imsu_existed boolean NOT NULL DEFAULT false,
	scscf text,
	k bytea, op bytea, op_type text, amf bytea,
	sqn bigint NOT NULL,
	schemes text[] NOT NULL,
	realm text, ha1 text, password bytea,
	impus text[] NOT NULL,
	barred boolean[] NOT NULL,
	profile_id bigint NOT NULL,
	imsu_id bigint NOT NULL DEFAULT nextval('$IMSU_SEQ'::regclass),
	impi_id bigint NOT NULL DEFAULT nextval('$IMPI_SEQ'::regclass),
	irs_id bigint NOT NULL DEFAULT nextval('$IRS_SEQ'::regclass)
) ON COMMIT DROP`

var stagingCols = []string{"line", "impi", "imsu", "imsu_first", "scscf", "k", "op", "op_type", "amf", "sqn", "schemes",
	"realm", "ha1", "password", "impus", "barred", "profile_id"}

// The set-based statements that write the staged rows, in order.
// IMSUs that exist keep their id (and take the file's preferred S-CSCF
// when it names one); an IMSU named on several rows takes the id of its
// first row; the new ones are inserted.
var importSQL = []string{
	`UPDATE import_subscriber s SET imsu_id = u.id, imsu_existed = true FROM imsu u WHERE u.name = s.imsu`,
	`UPDATE imsu u SET preferred_scscf = s.scscf FROM import_subscriber s
	 WHERE s.imsu_existed AND s.imsu_first AND s.scscf <> '' AND u.id = s.imsu_id`,
	`UPDATE import_subscriber s SET imsu_id = f.imsu_id FROM import_subscriber f
	 WHERE f.imsu_first AND NOT f.imsu_existed AND NOT s.imsu_first AND f.imsu = s.imsu`,
	`INSERT INTO imsu (id, name, preferred_scscf)
	 SELECT imsu_id, imsu, nullif(scscf, '') FROM import_subscriber WHERE imsu_first AND NOT imsu_existed`,
	`INSERT INTO implicit_registration_set (id) SELECT irs_id FROM import_subscriber`,
	`INSERT INTO impi (id, imsu_id, identity, k, op, op_type, amf, sqn, auth_schemes, default_scheme, digest_realm, digest_ha1, password)
	 SELECT impi_id, imsu_id, impi, k, op, op_type, coalesce(amf, '\x8000'::bytea), sqn, schemes, schemes[1], realm, ha1, password
	   FROM import_subscriber`,
	`WITH u AS (INSERT INTO impu (id, identity, barring, service_profile_id, implicit_set_id)
	   SELECT nextval('$IMPU_SEQ'::regclass), u.identity, u.barred, s.profile_id, s.irs_id
	     FROM import_subscriber s, unnest(s.impus, s.barred) AS u(identity, barred)
	   RETURNING id, implicit_set_id)
	 INSERT INTO impi_impu (impi_id, impu_id) SELECT s.impi_id, u.id FROM u JOIN import_subscriber s ON s.irs_id = u.implicit_set_id`,
}

// withoutTriggersSQL skips the per-row triggers (foreign key checks,
// impi_check) for the rest of the transaction, as pg_restore
// --disable-triggers does; only a superuser may. The rows are consistent
// by construction (every id comes from this transaction or from a row it
// locked) and were checked in Go as impi_check would; lockReferencedSQL
// keeps the referenced service profiles and existing IMSUs from being
// deleted meanwhile, and notifySQL sends what the statement triggers
// would have sent.
const (
	withoutTriggersSQL = `SET LOCAL session_replication_role = replica`
	lockReferencedSQL  = `SELECT count(*) FROM (SELECT 1 FROM service_profile WHERE id IN (SELECT DISTINCT profile_id FROM import_subscriber)
		FOR KEY SHARE) p, (SELECT count(*) FROM (SELECT 1 FROM imsu WHERE id IN (SELECT imsu_id FROM import_subscriber WHERE imsu_existed)
		FOR KEY SHARE) x) u`
	notifySQL = `SELECT pg_notify('hss_userdata', t) FROM unnest('{imsu,impi,impu,impi_impu}'::text[]) t`
)

// copySource feeds validated CSV rows to COPY.
type copySource struct {
	in       *csvReader
	profiles map[string]int64
	imsus    map[string]bool // IMSU names seen
	row      []any
	err      error
	n        int
}

func (c *copySource) Next() bool {
	s, line, err := c.in.next()
	if err == io.EOF {
		return false
	}
	if err != nil {
		c.err = err
		return false
	}
	rec, err := s.Record()
	var row *subRow
	if err == nil {
		row, err = rec.validate(nil)
	}
	if err != nil {
		c.err = lineErr(line, err)
		return false
	}
	pid, ok := c.profiles[row.impus[0].profile]
	if !ok {
		c.err = lineErr(line, fieldErr("/profile", "service profile %s does not exist (create it with: imsctl profile add %s)",
			row.impus[0].profile, row.impus[0].profile))
		return false
	}
	ids := make([]string, len(row.impus))
	barred := make([]bool, len(row.impus))
	for i, u := range row.impus {
		ids[i], barred[i] = u.identity, u.barred
	}
	first := !c.imsus[row.imsu]
	c.imsus[row.imsu] = true
	sqn := int64(0)
	if row.sqn != nil {
		sqn = *row.sqn
	}
	c.row = []any{line, row.impi, row.imsu, first, row.scscf, row.k, row.op, row.opType, row.amf, sqn, row.schemes,
		row.realm, row.ha1, row.password, ids, barred, pid}
	c.n++
	return true
}

func (c *copySource) Values() ([]any, error) { return c.row, nil }
func (c *copySource) Err() error             { return c.err }

var keyDetail = regexp.MustCompile(`^Key \(([a-z_]+)\)=\((.*)\) already exists`)

// ImportCSV reads subscribers from r (a header row naming CSVColumns, in
// any order, then one subscriber per row, the form of Subscriber) and adds
// them all in one transaction: COPY into a staging table, then one
// INSERT … SELECT per table. Any bad row aborts the import; the
// *UserError names its line (Field "/line/N…"). It returns the number of
// subscribers added.
func ImportCSV(ctx context.Context, db DB, r io.Reader) (int, error) {
	in, err := newCSVReader(r)
	if err != nil {
		return 0, err
	}
	n := 0
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		profiles := map[string]int64{}
		rows, err := tx.Query(ctx, `SELECT name, id FROM service_profile`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			var id int64
			if err := rows.Scan(&name, &id); err != nil {
				rows.Close()
				return err
			}
			profiles[name] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// Hash joins of a million rows stay in memory.
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '256MB'`); err != nil {
			return err
		}
		var seqs [4]string
		if err := tx.QueryRow(ctx, `SELECT pg_get_serial_sequence('imsu', 'id'), pg_get_serial_sequence('impi', 'id'),
			pg_get_serial_sequence('implicit_registration_set', 'id'), pg_get_serial_sequence('impu', 'id')`).Scan(
			&seqs[0], &seqs[1], &seqs[2], &seqs[3]); err != nil {
			return err
		}
		seqNames := strings.NewReplacer("$IMSU_SEQ", seqs[0], "$IMPI_SEQ", seqs[1], "$IRS_SEQ", seqs[2], "$IMPU_SEQ", seqs[3])
		if _, err := tx.Exec(ctx, seqNames.Replace(stagingSQL)); err != nil {
			return err
		}
		src := &copySource{in: in, profiles: profiles, imsus: map[string]bool{}}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_subscriber"}, stagingCols, src); err != nil {
			if src.err != nil {
				return src.err
			}
			return err
		}
		n = src.n
		if n == 0 {
			return nil
		}
		// The planner needs the staged row count to join it well.
		if _, err := tx.Exec(ctx, `ANALYZE import_subscriber`); err != nil {
			return err
		}
		fast := false
		if sp, err := tx.Begin(ctx); err == nil {
			if _, err := sp.Exec(ctx, withoutTriggersSQL); err == nil {
				fast = sp.Commit(ctx) == nil
			} else {
				_ = sp.Rollback(ctx) // not a superuser: the triggers run
			}
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		stmts := importSQL
		if fast {
			stmts = append(append([]string{importSQL[0], lockReferencedSQL}, importSQL[1:]...), notifySQL)
		}
		for _, q := range stmts {
			if _, err = sp.Exec(ctx, seqNames.Replace(q)); err != nil {
				break
			}
		}
		if err == nil {
			return sp.Commit(ctx)
		}
		_ = sp.Rollback(ctx)
		return explainImportError(ctx, tx, err)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// explainImportError turns a set-based statement's failure into the CSV
// line at fault.
func explainImportError(ctx context.Context, tx pgx.Tx, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return friendly(err)
	}
	m := keyDetail.FindStringSubmatch(pe.Detail)
	if m == nil {
		return friendly(err)
	}
	var q, what, field string
	switch pe.TableName {
	case "impi":
		q, what, field = `SELECT line FROM import_subscriber WHERE impi = $1 ORDER BY line LIMIT 2`, "IMPI", "/impi"
	case "impu":
		q, what, field = `SELECT line FROM import_subscriber WHERE $1 = ANY (impus) ORDER BY line LIMIT 2`, "IMPU", "/impu"
	default:
		return friendly(err)
	}
	rows, qerr := tx.Query(ctx, q, m[2])
	if qerr != nil {
		return friendly(err)
	}
	lines, qerr := pgx.CollectRows(rows, pgx.RowTo[int32])
	switch {
	case qerr != nil || len(lines) == 0:
		return friendly(err)
	case len(lines) == 2:
		return lineErr(int(lines[1]), conflict(field, "%s %s given twice (first on line %d)", what, m[2], lines[0]))
	default:
		return lineErr(int(lines[0]), conflict(field, "%s %s already exists", what, m[2]))
	}
}

// ExportCSV writes every subscriber to w in ImportCSV's format, one row
// per IMPI ordered by IMPI: impi, impu (space-separated), imsu, amf, sqn,
// realm, auth_schemes, profile (of the first IMPU), scscf, barred; with
// secrets also k, op, opc and password. It returns the number of rows.
// conn must be a connection (COPY TO STDOUT). An IMPI whose IMPUs are in
// several implicit registration sets or profiles is written as one set
// with the first IMPU's profile.
func ExportCSV(ctx context.Context, conn *pgx.Conn, w io.Writer, secrets bool) (int64, error) {
	cols := `i.identity AS impi,
		array_to_string(ARRAY(SELECT u.identity FROM impi_impu x JOIN impu u ON u.id = x.impu_id WHERE x.impi_id = i.id ORDER BY u.id), ' ') AS impu,
		s.name AS imsu, CASE WHEN i.k IS NOT NULL THEN encode(i.amf, 'hex') END AS amf, i.sqn,
		i.digest_realm AS realm,
		array_to_string(CASE WHEN i.default_scheme IS NULL THEN i.auth_schemes
			ELSE i.default_scheme || array_remove(i.auth_schemes, i.default_scheme) END, ' ') AS auth_schemes,
		(SELECT p.name FROM impi_impu x JOIN impu u ON u.id = x.impu_id JOIN service_profile p ON p.id = u.service_profile_id
			WHERE x.impi_id = i.id ORDER BY u.id LIMIT 1) AS profile,
		s.preferred_scscf AS scscf,
		nullif(array_to_string(ARRAY(SELECT u.identity FROM impi_impu x JOIN impu u ON u.id = x.impu_id
			WHERE x.impi_id = i.id AND u.barring ORDER BY u.id), ' '), '') AS barred`
	if secrets {
		cols += `, encode(i.k, 'hex') AS k,
		CASE WHEN i.op_type = 'op' THEN encode(i.op, 'hex') END AS op,
		CASE WHEN i.op_type = 'opc' THEN encode(i.op, 'hex') END AS opc,
		convert_from(i.password, 'UTF8') AS password`
	}
	tag, err := conn.PgConn().CopyTo(ctx, w, `COPY (SELECT `+cols+` FROM impi i JOIN imsu s ON s.id = i.imsu_id ORDER BY i.identity)
		TO STDOUT WITH (FORMAT csv, HEADER)`)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
