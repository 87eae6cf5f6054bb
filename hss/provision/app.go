package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/imscore/imscore/migrations"
	"github.com/imscore/imscore/pkg/version"
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
		Version:   version.Version, // --version, like the other binaries
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
					return flagErr(err)
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
					var names []string
					for _, u := range in.Subscriber.IMPUs {
						names = append(names, u.Identity)
					}
					fmt.Fprintf(c.App.Writer, "%s\tauth=%s\timpus=%s\n", in.Subscriber.IMPI, strings.Join(in.Subscriber.AuthSchemes, ","), strings.Join(names, ","))
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
		{Name: "export", Usage: "write every subscriber as CSV in the import format (secrets only with --secrets)", ArgsUsage: "[FILE]",
			Flags: []cli.Flag{boolf("secrets", "also write k, op, opc and password")},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				w := c.App.Writer
				if c.NArg() > 1 {
					return userErr("subscriber export takes at most one FILE")
				}
				if c.NArg() == 1 {
					f, err := os.OpenFile(c.Args().First(), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
					if err != nil {
						return err
					}
					defer f.Close()
					w = f
				}
				_, err := ExportCSV(c.Context, conn, w, c.Bool("secrets"))
				return err
			})},
	}}
}

// flagErr names the flag of a field error of "subscriber add":
// "/k" becomes "--k".
func flagErr(err error) error {
	var ue *UserError
	if errors.As(err, &ue) && strings.HasPrefix(ue.Field, "/") && !strings.Contains(ue.Field[1:], "/") {
		name := strings.ReplaceAll(ue.Field[1:], "_", "-")
		if strings.HasPrefix(ue.Msg, ue.Field[1:]+" ") {
			return &UserError{Kind: ue.Kind, Field: ue.Field, Msg: "--" + name + ue.Msg[len(ue.Field)-1:]}
		}
	}
	return err
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
