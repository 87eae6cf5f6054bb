package provision

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/imscore/imscore/migrations"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"
)

// DefaultDatabaseURL is used when neither --database-url nor DATABASE_URL
// is set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/ims?sslmode=disable"

func env(name string) []string {
	return []string{"IMSCTL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

func str(name, usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Usage: usage, EnvVars: env(name)}
}
func strs(name, usage string) *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: name, Usage: usage, EnvVars: env(name)}
}
func boolf(name, usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Usage: usage, EnvVars: env(name)}
}

var jsonFlag = boolf("json", "print JSON")

// App returns the imsctl command tree writing to out.
func App(out io.Writer) *cli.App {
	return &cli.App{
		Name:      "imsctl",
		Usage:     "provision the IMS HSS database",
		Writer:    out,
		ErrWriter: out,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database-url", Value: DefaultDatabaseURL, Usage: "PostgreSQL URL",
				EnvVars: []string{"IMSCTL_DATABASE_URL", "DATABASE_URL"}},
		},
		ExitErrHandler:            func(*cli.Context, error) {},
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			{Name: "db", Usage: "database schema", Subcommands: []*cli.Command{
				{Name: "migrate", Usage: "apply the HSS migrations (a no-op when up to date)", Action: dbMigrate},
			}},
			subscriberCmd(), profileCmd(), ifcCmd(), asCmd(), scscfCmd(),
			{Name: "deregister", Usage: "ask the HSS to de-register IMPU (RTR)", ArgsUsage: "IMPU",
				Flags: []cli.Flag{str("reason", "Reason-Info text sent in the RTR")}, Action: deregister},
			{Name: "push-profile", Usage: "ask the HSS to send the current user profile (PPR) for IMPU, or for every assigned implicit set using --profile NAME",
				ArgsUsage: "[IMPU]", Flags: []cli.Flag{str("profile", "service profile whose assigned users get a PPR")}, Action: pushProfile},
		},
	}
}

func connect(c *cli.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(c.Context, c.String("database-url"))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the database: %w", err)
	}
	return conn, nil
}

func withConn(fn func(c *cli.Context, conn *pgx.Conn) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		conn, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		return friendly(fn(c, conn))
	}
}

func dbMigrate(c *cli.Context) error {
	conn, err := connect(c)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	before, latest, err := migrations.Version(c.Context, conn)
	if err != nil {
		return err
	}
	if err := migrations.Migrate(c.Context, conn); err != nil {
		return err
	}
	if before == latest {
		fmt.Fprintf(c.App.Writer, "schema is up to date (version %d)\n", latest)
	} else {
		fmt.Fprintf(c.App.Writer, "migrated schema from version %d to %d\n", before, latest)
	}
	return nil
}

func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", userErr("%s: want exactly one %s", c.Command.FullName(), what)
	}
	return c.Args().First(), nil
}

func printJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

// ---- subscriber ----

func subscriberCmd() *cli.Command {
	return &cli.Command{Name: "subscriber", Usage: "IMSU/IMPI/IMPUs", Subcommands: []*cli.Command{
		{Name: "add", Usage: "add an IMPI with its IMPUs (one implicit registration set)",
			Flags: []cli.Flag{
				str("impi", "private identity user@realm (required)"),
				strs("impu", "public identity sip:/sips:/tel: URI (repeat; all form one implicit set)"),
				str("imsu", "subscription name (default: the IMPI; an existing one is reused)"),
				str("k", "AKA key K, 32 hex digits"), str("op", "operator key OP, 32 hex digits"),
				str("opc", "OPc, 32 hex digits (instead of --op)"), str("amf", "AMF, 4 hex digits (default 8000)"),
				&cli.Uint64Flag{Name: "sqn", Usage: "last SQN used (48 bits)", EnvVars: env("sqn")},
				str("password", "SIP digest password (stores HA1 and the password)"),
				str("realm", "digest realm (default: domain of the IMPI)"),
				str("auth-schemes", "aka,akav2,md5 (default: aka with --k, md5 with --password)"),
				str("profile", "service profile (default: default)"),
				str("scscf", "preferred S-CSCF SIP URI"),
				strs("barred", "bar this IMPU (repeat)"),
			},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				s := Subscriber{IMPI: c.String("impi"), IMPUs: c.StringSlice("impu"), IMSU: c.String("imsu"),
					K: c.String("k"), OP: c.String("op"), OPc: c.String("opc"), AMF: c.String("amf"), SQN: c.Uint64("sqn"),
					Password: c.String("password"), Realm: c.String("realm"), Profile: c.String("profile"),
					SCSCF: c.String("scscf"), Barred: c.StringSlice("barred")}
				if as := c.String("auth-schemes"); as != "" {
					s.AuthSchemes = strings.Split(as, ",")
				}
				irs, err := AddSubscriber(c.Context, conn, s)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "added IMPI %s with %d IMPU(s) in implicit registration set %d\n", s.IMPI, len(s.IMPUs), irs)
				return nil
			})},
		{Name: "show", Usage: "show a subscriber by IMPI or IMPU", ArgsUsage: "IMPI|IMPU",
			Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				id, err := oneArg(c, "IMPI or IMPU")
				if err != nil {
					return err
				}
				infos, err := ShowSubscriber(c.Context, conn, id)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, infos)
				}
				for _, in := range infos {
					in.WriteText(c.App.Writer)
				}
				return nil
			})},
		{Name: "list", Usage: "list IMPIs", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				infos, err := ListSubscribers(c.Context, conn)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, infos)
				}
				for _, in := range infos {
					fmt.Fprintf(c.App.Writer, "%s\tauth=%s\timpus=%s\n", in.IMPI, strings.Join(in.AuthSchemes, ","), strings.Join(in.impuNames(), ","))
				}
				return nil
			})},
		{Name: "delete", Usage: "delete an IMPI and the IMPUs only it uses", ArgsUsage: "IMPI",
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				id, err := oneArg(c, "IMPI")
				if err != nil {
					return err
				}
				del, err := DeleteSubscriber(c.Context, conn, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted IMPI %s and %d IMPU(s) %s\n", id, len(del), strings.Join(del, " "))
				return nil
			})},
		{Name: "import", Usage: "add subscribers from a CSV file with a header row (all or nothing)", ArgsUsage: "FILE",
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				file, err := oneArg(c, "FILE")
				if err != nil {
					return err
				}
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				n, err := ImportCSV(c.Context, conn, f)
				if err != nil {
					return fmt.Errorf("%s: %w (nothing was imported)", file, err)
				}
				fmt.Fprintf(c.App.Writer, "imported %d subscriber(s)\n", n)
				return nil
			})},
	}}
}

// CSVColumns are the columns ImportCSV understands (header names).
// Multi-valued cells (impu, barred, auth_schemes) are separated by spaces.
var CSVColumns = []string{"impi", "impu", "imsu", "k", "op", "opc", "amf", "sqn", "password", "realm", "auth_schemes", "profile", "scscf", "barred"}

// ImportCSV reads subscribers from r (a header row naming CSVColumns, in
// any order, then one subscriber per row) and adds them all in one
// transaction: any bad row aborts the import and the error names its line.
func ImportCSV(ctx context.Context, conn *pgx.Conn, r io.Reader) (int, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return 0, userErr("line 1: cannot read the header row: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, k := range CSVColumns {
			known = known || k == h
		}
		if !known {
			return 0, userErr("line 1: unknown column %q (known: %s)", h, strings.Join(CSVColumns, ", "))
		}
		col[h] = i
	}
	if _, ok := col["impi"]; !ok {
		return 0, userErr("line 1: the header has no impi column")
	}
	if _, ok := col["impu"]; !ok {
		return 0, userErr("line 1: the header has no impu column")
	}
	n := 0
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return nil
			}
			line, _ := cr.FieldPos(0)
			if err != nil {
				return userErr("line %d: %v", line, err)
			}
			get := func(k string) string {
				if i, ok := col[k]; ok && i < len(rec) {
					return strings.TrimSpace(rec[i])
				}
				return ""
			}
			if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
				continue
			}
			s := Subscriber{IMPI: get("impi"), IMPUs: strings.Fields(get("impu")), IMSU: get("imsu"), K: get("k"),
				OP: get("op"), OPc: get("opc"), AMF: get("amf"), Password: get("password"), Realm: get("realm"),
				Profile: get("profile"), SCSCF: get("scscf"), Barred: strings.Fields(get("barred"))}
			if v := get("sqn"); v != "" {
				if s.SQN, err = strconv.ParseUint(v, 0, 64); err != nil {
					return userErr("line %d: sqn %q is not a number", line, v)
				}
			}
			if v := get("auth_schemes"); v != "" {
				s.AuthSchemes = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
			}
			row, err := s.validate()
			if err == nil {
				_, err = addSubscriberTx(ctx, tx, row)
			}
			if err != nil {
				if ue := new(UserError); errors.As(friendly(err), &ue) {
					return userErr("line %d: %s", line, ue.Msg)
				}
				return fmt.Errorf("line %d: %w", line, err)
			}
			n++
		}
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func deregister(c *cli.Context) error {
	impu, err := oneArg(c, "IMPU")
	if err != nil {
		return err
	}
	conn, err := connect(c)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	id, err := Deregister(c.Context, conn, impu, c.String("reason"))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "queued RTR for %s as hss_command %d (the running HSS sends it)\n", impu, id)
	return nil
}

func pushProfile(c *cli.Context) error {
	conn, err := connect(c)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var ids []int64
	switch name := c.String("profile"); {
	case name != "" && c.NArg() == 0:
		ids, err = PushProfileOf(c.Context, conn, name)
	case name == "" && c.NArg() == 1:
		var id int64
		id, err = PushProfile(c.Context, conn, c.Args().First())
		ids = []int64{id}
	default:
		return userErr("push-profile takes either one IMPU or --profile NAME")
	}
	if err != nil {
		return friendly(err)
	}
	fmt.Fprintf(c.App.Writer, "queued %d PPR command(s) (the running HSS sends them)\n", len(ids))
	return nil
}

// PushProfile records a request for the HSS to send PPR with the current
// user data of impu's implicit registration set (TS 29.228 §6.2.2) in
// hss_command. The IMPU must exist; the HSS skips it when no S-CSCF is
// assigned.
func PushProfile(ctx context.Context, conn *pgx.Conn, impu string) (id int64, err error) {
	return queueCommand(ctx, conn, "ppr", impu, "")
}

// PushProfileOf queues one PPR per implicit registration set that uses the
// service profile name and has an S-CSCF assigned (after the profile or its
// iFCs changed). It returns the command ids; none when nobody is assigned.
func PushProfileOf(ctx context.Context, conn *pgx.Conn, name string) ([]int64, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM service_profile WHERE name = $1)`, name).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, userErr("service profile %s does not exist", name)
	}
	rows, err := conn.Query(ctx, `
		INSERT INTO hss_command (kind, impu, reason)
		SELECT DISTINCT ON (u.implicit_set_id) 'ppr', u.identity, 'profile ' || $1
		  FROM impu u
		  JOIN service_profile p ON p.id = u.service_profile_id
		  JOIN scscf_assignment a ON a.impu_id = u.id
		 WHERE p.name = $1
		 ORDER BY u.implicit_set_id, u.id
		RETURNING id`, name)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

func queueCommand(ctx context.Context, conn *pgx.Conn, kind, impu, reason string) (id int64, err error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM impu WHERE identity = $1)`, impu).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, userErr("IMPU %s does not exist", impu)
	}
	err = conn.QueryRow(ctx, `INSERT INTO hss_command (kind, impu, reason) VALUES ($1, $2, $3) RETURNING id`, kind, impu, reason).Scan(&id)
	return id, err
}

// Deregister records a request for the HSS to send RTR for impu
// (TS 29.228 §6.2.1) in hss_command; the insert trigger NOTIFYs channel
// hss_commands with the command id. The IMPU must exist.
func Deregister(ctx context.Context, conn *pgx.Conn, impu, reason string) (id int64, err error) {
	return queueCommand(ctx, conn, "rtr", impu, reason)
}
