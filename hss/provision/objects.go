package provision

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/imscore/imscore/hss/store"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"
)

func intList(flag, s string) ([]int32, error) {
	out := []int32{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, userErr("--%s: %q is not an integer", flag, f)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

func deleteByName(ctx context.Context, conn *pgx.Conn, table, what, name string) error {
	tag, err := conn.Exec(ctx, `DELETE FROM `+table+` WHERE name = $1`, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return userErr("%s %s does not exist", what, name)
	}
	return nil
}

func nameArg(c *cli.Context) (string, error) { return oneArg(c, "NAME") }

// ---- profile ----

// ProfileInfo is a service profile as shown by imsctl.
type ProfileInfo struct {
	Name                     string   `json:"name"`
	SubscribedMediaProfileID *int32   `json:"subscribed_media_profile_id,omitempty"`
	IFCs                     []string `json:"ifcs"`
	SharedIFCSets            []int32  `json:"shared_ifc_sets"`
	IMPUs                    int      `json:"impus"`
}

func profileCmd() *cli.Command {
	ifcFlag := strs("ifc", "iFC NAME or NAME:PRIORITY (priority overrides the iFC's own; repeat)")
	return &cli.Command{Name: "profile", Usage: "service profiles", Subcommands: []*cli.Command{
		{Name: "add", Usage: "add a service profile", ArgsUsage: "NAME",
			Flags: []cli.Flag{ifcFlag, strs("shared-ifc-set", "shared iFC set id (created if new; repeat)"),
				&cli.IntFlag{Name: "media-profile-id", Usage: "SubscribedMediaProfileId", Value: -1, EnvVars: env("media-profile-id")}},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				err = pgx.BeginFunc(c.Context, conn, func(tx pgx.Tx) error {
					var smp *int
					if v := c.Int("media-profile-id"); v >= 0 {
						smp = &v
					}
					var id int64
					if err := tx.QueryRow(c.Context, `INSERT INTO service_profile (name, subscribed_media_profile_id) VALUES ($1, $2)
						ON CONFLICT (name) DO NOTHING RETURNING id`, name, smp).Scan(&id); err != nil {
						if errors.Is(err, pgx.ErrNoRows) {
							return userErr("profile %s already exists", name)
						}
						return err
					}
					return linkProfile(c.Context, tx, id, c.StringSlice("ifc"), c.StringSlice("shared-ifc-set"))
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "added profile %s\n", name)
				return nil
			})},
		{Name: "add-ifc", Usage: "attach iFCs / shared iFC sets to an existing profile", ArgsUsage: "PROFILE",
			Flags: []cli.Flag{ifcFlag, strs("shared-ifc-set", "shared iFC set id (repeat)")},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				err = pgx.BeginFunc(c.Context, conn, func(tx pgx.Tx) error {
					var id int64
					if err := tx.QueryRow(c.Context, `SELECT id FROM service_profile WHERE name = $1`, name).Scan(&id); err != nil {
						if errors.Is(err, pgx.ErrNoRows) {
							return userErr("profile %s does not exist", name)
						}
						return err
					}
					return linkProfile(c.Context, tx, id, c.StringSlice("ifc"), c.StringSlice("shared-ifc-set"))
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "updated profile %s\n", name)
				return nil
			})},
		{Name: "list", Usage: "list service profiles", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				ps, err := profiles(c.Context, conn, "")
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, ps)
				}
				for _, p := range ps {
					fmt.Fprintf(c.App.Writer, "%s\tifcs=%s\timpus=%d\n", p.Name, strings.Join(p.IFCs, ","), p.IMPUs)
				}
				return nil
			})},
		{Name: "show", Usage: "show a service profile", ArgsUsage: "NAME", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				ps, err := profiles(c.Context, conn, name)
				if err != nil {
					return err
				}
				if len(ps) == 0 {
					return userErr("profile %s does not exist", name)
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, ps[0])
				}
				p := ps[0]
				fmt.Fprintf(c.App.Writer, "profile %s\n  impus: %d\n", p.Name, p.IMPUs)
				if p.SubscribedMediaProfileID != nil {
					fmt.Fprintf(c.App.Writer, "  subscribed media profile: %d\n", *p.SubscribedMediaProfileID)
				}
				for _, f := range p.IFCs {
					fmt.Fprintf(c.App.Writer, "  ifc %s\n", f)
				}
				for _, s := range p.SharedIFCSets {
					fmt.Fprintf(c.App.Writer, "  shared ifc set %d\n", s)
				}
				return nil
			})},
		{Name: "delete", Usage: "delete a service profile no IMPU uses", ArgsUsage: "NAME",
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				if err := deleteByName(c.Context, conn, "service_profile", "profile", name); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted profile %s\n", name)
				return nil
			})},
	}}
}

func linkProfile(ctx context.Context, tx pgx.Tx, profileID int64, ifcs, sets []string) error {
	for _, f := range ifcs {
		name, prio, hasPrio := strings.Cut(f, ":")
		var p *int
		if hasPrio {
			n, err := strconv.Atoi(prio)
			if err != nil || n < 0 {
				return userErr("--ifc %q: priority must be a non-negative integer", f)
			}
			p = &n
		}
		tag, err := tx.Exec(ctx, `INSERT INTO service_profile_ifc (service_profile_id, ifc_id, priority)
			SELECT $1, id, $3 FROM ifc WHERE name = $2
			ON CONFLICT (service_profile_id, ifc_id) DO UPDATE SET priority = EXCLUDED.priority`, profileID, name, p)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return userErr("iFC %s does not exist", name)
		}
	}
	for _, s := range sets {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return userErr("--shared-ifc-set %q must be a non-negative integer", s)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO shared_ifc_set (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, n, fmt.Sprintf("set-%d", n)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO service_profile_shared_ifc_set VALUES ($1, $2) ON CONFLICT DO NOTHING`, profileID, n); err != nil {
			return err
		}
	}
	return nil
}

func profiles(ctx context.Context, conn *pgx.Conn, name string) ([]ProfileInfo, error) {
	rows, err := conn.Query(ctx, `SELECT p.name, p.subscribed_media_profile_id,
		coalesce((SELECT array_agg(f.name || ':' || coalesce(x.priority, f.priority) ORDER BY coalesce(x.priority, f.priority), f.id)
			FROM service_profile_ifc x JOIN ifc f ON f.id = x.ifc_id WHERE x.service_profile_id = p.id), '{}'),
		coalesce((SELECT array_agg(s.shared_ifc_set_id ORDER BY 1) FROM service_profile_shared_ifc_set s WHERE s.service_profile_id = p.id), '{}'),
		(SELECT count(*) FROM impu u WHERE u.service_profile_id = p.id)
		FROM service_profile p WHERE $1 = '' OR p.name = $1 ORDER BY p.name`, name)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProfileInfo, error) {
		var p ProfileInfo
		var n int64
		err := r.Scan(&p.Name, &p.SubscribedMediaProfileID, &p.IFCs, &p.SharedIFCSets, &n)
		p.IMPUs = int(n)
		return p, err
	})
}

// ---- ifc ----

// IFCInfo is an iFC as shown by imsctl.
type IFCInfo struct {
	Name                 string   `json:"name"`
	Priority             int32    `json:"priority"`
	ProfilePartIndicator string   `json:"profile_part_indicator,omitempty"`
	AS                   string   `json:"application_server"`
	ConditionTypeCNF     bool     `json:"condition_type_cnf"`
	Trigger              string   `json:"trigger"`
	Profiles             []string `json:"profiles"`
}

func ifcCmd() *cli.Command {
	return &cli.Command{Name: "ifc", Usage: "initial filter criteria", Subcommands: []*cli.Command{
		{Name: "add", Usage: "add an iFC (trigger syntax: docs/provisioning.md)", ArgsUsage: "NAME",
			Flags: []cli.Flag{
				str("as", "application server name (required)"),
				&cli.IntFlag{Name: "priority", Usage: "priority (lower runs first)", EnvVars: env("priority")},
				str("profile-part", "registered|unregistered (ProfilePartIndicator; default absent)"),
				strs("method", "[G:][!]METHOD"), strs("ruri", "[G:][!]REGEX on the Request-URI"),
				strs("header", "[G:][!]NAME[=REGEX]"), strs("session-case", "[G:][!]originating|terminating-registered|terminating-unregistered|originating-unregistered|originating-cdiv"),
				strs("sdp", "[G:][!]LINE[=REGEX], e.g. m=audio"),
				strs("registration-type", "initial|re|de, for --method REGISTER"),
				boolf("cnf", "groups ANDed, SPTs in a group ORed (default)"),
				boolf("dnf", "groups ORed, SPTs in a group ANDed"),
				strs("profile", "also attach to this service profile (repeat)"),
			},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				if c.Bool("cnf") && c.Bool("dnf") {
					return userErr("give --cnf or --dnf, not both")
				}
				if c.String("as") == "" {
					return userErr("--as is required")
				}
				var ppi *int
				switch strings.ToLower(c.String("profile-part")) {
				case "":
				case "registered", "0":
					v := 0
					ppi = &v
				case "unregistered", "1":
					v := 1
					ppi = &v
				default:
					return userErr("--profile-part must be registered or unregistered")
				}
				if c.Int("priority") < 0 {
					return userErr("--priority must not be negative")
				}
				spts, err := TriggerInput{Methods: c.StringSlice("method"), RequestURIs: c.StringSlice("ruri"),
					Headers: c.StringSlice("header"), SessionCases: c.StringSlice("session-case"), SDPs: c.StringSlice("sdp"),
					RegistrationTypes: c.StringSlice("registration-type"), DNF: c.Bool("dnf")}.Parse()
				if err != nil {
					return err
				}
				err = pgx.BeginFunc(c.Context, conn, func(tx pgx.Tx) error {
					var asID int64
					if err := tx.QueryRow(c.Context, `SELECT id FROM application_server WHERE name = $1`, c.String("as")).Scan(&asID); err != nil {
						if errors.Is(err, pgx.ErrNoRows) {
							return userErr("application server %s does not exist", c.String("as"))
						}
						return err
					}
					var id int64
					if err := tx.QueryRow(c.Context, `INSERT INTO ifc (name, priority, profile_part_indicator, application_server_id, condition_type_cnf)
						VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id`,
						name, c.Int("priority"), ppi, asID, !c.Bool("dnf")).Scan(&id); err != nil {
						if errors.Is(err, pgx.ErrNoRows) {
							return userErr("iFC %s already exists", name)
						}
						return err
					}
					for _, s := range spts {
						if s.RegistrationTypes == nil {
							s.RegistrationTypes = []int16{}
						}
						if _, err := tx.Exec(c.Context, `INSERT INTO spt (ifc_id, group_id, condition_negated, type, value, content, registration_types)
							VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, s.Group, s.Negated, s.Type, s.Value, s.Content, s.RegistrationTypes); err != nil {
							return err
						}
					}
					for _, p := range c.StringSlice("profile") {
						var pid int64
						if err := tx.QueryRow(c.Context, `SELECT id FROM service_profile WHERE name = $1`, p).Scan(&pid); err != nil {
							if errors.Is(err, pgx.ErrNoRows) {
								return userErr("profile %s does not exist", p)
							}
							return err
						}
						if err := linkProfile(c.Context, tx, pid, []string{name}, nil); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "added iFC %s\n", name)
				return nil
			})},
		{Name: "list", Usage: "list iFCs", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				fs, err := ifcs(c.Context, conn, "")
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, fs)
				}
				for _, f := range fs {
					fmt.Fprintf(c.App.Writer, "%s\tpriority=%d\tas=%s\ttrigger: %s\n", f.Name, f.Priority, f.AS, f.Trigger)
				}
				return nil
			})},
		{Name: "show", Usage: "show an iFC", ArgsUsage: "NAME", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				fs, err := ifcs(c.Context, conn, name)
				if err != nil {
					return err
				}
				if len(fs) == 0 {
					return userErr("iFC %s does not exist", name)
				}
				f := fs[0]
				if c.Bool("json") {
					return printJSON(c.App.Writer, f)
				}
				fmt.Fprintf(c.App.Writer, "iFC %s\n  priority: %d\n  application server: %s\n  trigger: %s\n", f.Name, f.Priority, f.AS, f.Trigger)
				if f.ProfilePartIndicator != "" {
					fmt.Fprintf(c.App.Writer, "  profile part: %s\n", f.ProfilePartIndicator)
				}
				fmt.Fprintf(c.App.Writer, "  profiles: %s\n", strings.Join(f.Profiles, ", "))
				return nil
			})},
		{Name: "delete", Usage: "delete an iFC (removes it from every profile)", ArgsUsage: "NAME",
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				if err := deleteByName(c.Context, conn, "ifc", "iFC", name); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted iFC %s\n", name)
				return nil
			})},
	}}
}

func ifcs(ctx context.Context, conn *pgx.Conn, name string) ([]IFCInfo, error) {
	rows, err := conn.Query(ctx, `SELECT f.id, f.name, f.priority, coalesce(f.profile_part_indicator, -1), a.name, f.condition_type_cnf,
		coalesce((SELECT array_agg(p.name ORDER BY p.name) FROM service_profile_ifc x JOIN service_profile p ON p.id = x.service_profile_id
			WHERE x.ifc_id = f.id), '{}')
		FROM ifc f JOIN application_server a ON a.id = f.application_server_id WHERE $1 = '' OR f.name = $1 ORDER BY f.priority, f.name`, name)
	if err != nil {
		return nil, err
	}
	type row struct {
		id int64
		IFCInfo
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var ppi int16
		err := r.Scan(&x.id, &x.Name, &x.Priority, &ppi, &x.AS, &x.ConditionTypeCNF, &x.Profiles)
		switch ppi {
		case 0:
			x.ProfilePartIndicator = "registered"
		case 1:
			x.ProfilePartIndicator = "unregistered"
		}
		return x, err
	})
	if err != nil {
		return nil, err
	}
	out := []IFCInfo{}
	for _, r := range rs {
		groups := map[int32][]string{}
		var order []int32
		q, err := conn.Query(ctx, `SELECT group_id, condition_negated, type, value, coalesce(content, ''), content IS NOT NULL, registration_types
			FROM spt WHERE ifc_id = $1 ORDER BY group_id, id`, r.id)
		if err != nil {
			return nil, err
		}
		for q.Next() {
			var g int32
			var neg, has bool
			var t, v, ct string
			var rt []int16
			if err := q.Scan(&g, &neg, &t, &v, &ct, &has, &rt); err != nil {
				q.Close()
				return nil, err
			}
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			groups[g] = append(groups[g], FormatSPT(neg, t, v, ct, has, rt))
		}
		q.Close()
		if err := q.Err(); err != nil {
			return nil, err
		}
		inner, outer := " OR ", " AND "
		if !r.ConditionTypeCNF {
			inner, outer = " AND ", " OR "
		}
		var parts []string
		for _, g := range order {
			parts = append(parts, "("+strings.Join(groups[g], inner)+")")
		}
		r.Trigger = strings.Join(parts, outer)
		if r.Trigger == "" {
			r.Trigger = "(always)"
		}
		out = append(out, r.IFCInfo)
	}
	return out, nil
}

// ---- application server ----

// ASInfo is an application server as shown by imsctl.
type ASInfo struct {
	Name                    string            `json:"name"`
	ServerName              string            `json:"server_name"`
	DefaultHandling         string            `json:"default_handling"`
	ServiceInfo             string            `json:"service_info,omitempty"`
	IncludeRegisterRequest  bool              `json:"include_register_request"`
	IncludeRegisterResponse bool              `json:"include_register_response"`
	DiameterHost            string            `json:"diameter_host,omitempty"`
	Sh                      map[string]string `json:"sh_permissions,omitempty"`
}

func asCmd() *cli.Command {
	return &cli.Command{Name: "as", Usage: "application servers", Subcommands: []*cli.Command{
		{Name: "add", Usage: "add an application server", ArgsUsage: "NAME",
			Flags: []cli.Flag{
				str("server-name", "SIP URI of the AS (required)"),
				&cli.StringFlag{Name: "default-handling", Value: "continue", Usage: "continue|terminate", EnvVars: env("default-handling")},
				str("service-info", "ServiceInfo text"),
				boolf("include-register-request", "send the REGISTER to the AS in third-party registration"),
				boolf("include-register-response", "send the 200 to REGISTER to the AS"),
				str("diameter-host", "Origin-Host of the AS on Sh"),
				strs("sh", "DATAREF=udr,pur,snr (e.g. RepositoryData=udr,pur,snr; repeat)"),
			},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				sn := c.String("server-name")
				if l := strings.ToLower(sn); !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") {
					return userErr("--server-name %q must be a sip: or sips: URI", sn)
				}
				dh := 0
				switch strings.ToLower(c.String("default-handling")) {
				case "continue", "session_continued", "0":
				case "terminate", "session_terminated", "1":
					dh = 1
				default:
					return userErr("--default-handling must be continue or terminate")
				}
				type perm struct {
					ref           store.DataReference
					udr, pur, snr bool
				}
				var perms []perm
				for _, p := range c.StringSlice("sh") {
					ref, ops, _ := strings.Cut(p, "=")
					d, ok := store.DataReferenceNames[ref]
					if !ok {
						if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < 64 {
							d, ok = store.DataReference(n), true
						}
					}
					if !ok {
						var names []string
						for n := range store.DataReferenceNames {
							names = append(names, n)
						}
						return userErr("--sh %q: unknown data reference %q (known: %s or a number)", p, ref, strings.Join(names, ", "))
					}
					x := perm{ref: d}
					for _, o := range strings.Split(ops, ",") {
						switch strings.ToLower(strings.TrimSpace(o)) {
						case "udr":
							x.udr = true
						case "pur":
							x.pur = true
						case "snr":
							x.snr = true
						default:
							return userErr("--sh %q: %q is not udr, pur or snr", p, o)
						}
					}
					perms = append(perms, x)
				}
				err = pgx.BeginFunc(c.Context, conn, func(tx pgx.Tx) error {
					var id int64
					if err := tx.QueryRow(c.Context, `INSERT INTO application_server (name, server_name, default_handling, service_info,
						include_register_request, include_register_response, diameter_host)
						VALUES ($1, $2, $3, nullif($4, ''), $5, $6, nullif($7, '')) ON CONFLICT (name) DO NOTHING RETURNING id`,
						name, sn, dh, c.String("service-info"), c.Bool("include-register-request"), c.Bool("include-register-response"),
						c.String("diameter-host")).Scan(&id); err != nil {
						if errors.Is(err, pgx.ErrNoRows) {
							return userErr("application server %s already exists", name)
						}
						return err
					}
					for _, p := range perms {
						if _, err := tx.Exec(c.Context, `INSERT INTO as_permission VALUES ($1, $2, $3, $4, $5)
							ON CONFLICT (application_server_id, data_reference) DO UPDATE SET udr = EXCLUDED.udr, pur = EXCLUDED.pur, snr = EXCLUDED.snr`,
							id, int16(p.ref), p.udr, p.pur, p.snr); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "added application server %s (%s)\n", name, sn)
				return nil
			})},
		{Name: "list", Usage: "list application servers", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				as, err := appServers(c.Context, conn, "")
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, as)
				}
				for _, a := range as {
					fmt.Fprintf(c.App.Writer, "%s\t%s\tdefault-handling=%s\n", a.Name, a.ServerName, a.DefaultHandling)
				}
				return nil
			})},
		{Name: "show", Usage: "show an application server", ArgsUsage: "NAME", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				as, err := appServers(c.Context, conn, name)
				if err != nil {
					return err
				}
				if len(as) == 0 {
					return userErr("application server %s does not exist", name)
				}
				a := as[0]
				if c.Bool("json") {
					return printJSON(c.App.Writer, a)
				}
				fmt.Fprintf(c.App.Writer, "application server %s\n  server name: %s\n  default handling: %s\n  service info: %s\n  include REGISTER request/response: %v/%v\n  diameter host: %s\n",
					a.Name, a.ServerName, a.DefaultHandling, a.ServiceInfo, a.IncludeRegisterRequest, a.IncludeRegisterResponse, a.DiameterHost)
				for ref, ops := range a.Sh {
					fmt.Fprintf(c.App.Writer, "  sh %s: %s\n", ref, ops)
				}
				return nil
			})},
		{Name: "delete", Usage: "delete an application server no iFC uses", ArgsUsage: "NAME",
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				if err := deleteByName(c.Context, conn, "application_server", "application server", name); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted application server %s\n", name)
				return nil
			})},
	}}
}

func appServers(ctx context.Context, conn *pgx.Conn, name string) ([]ASInfo, error) {
	rows, err := conn.Query(ctx, `SELECT id, name, server_name, default_handling, coalesce(service_info, ''), include_register_request,
		include_register_response, coalesce(diameter_host, '') FROM application_server WHERE $1 = '' OR name = $1 ORDER BY name`, name)
	if err != nil {
		return nil, err
	}
	type row struct {
		id int64
		ASInfo
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var dh int16
		err := r.Scan(&x.id, &x.Name, &x.ServerName, &dh, &x.ServiceInfo, &x.IncludeRegisterRequest, &x.IncludeRegisterResponse, &x.DiameterHost)
		x.DefaultHandling = map[int16]string{0: "continue", 1: "terminate"}[dh]
		return x, err
	})
	if err != nil {
		return nil, err
	}
	out := []ASInfo{}
	for _, r := range rs {
		q, err := conn.Query(ctx, `SELECT data_reference, udr, pur, snr FROM as_permission WHERE application_server_id = $1`, r.id)
		if err != nil {
			return nil, err
		}
		r.Sh = map[string]string{}
		for q.Next() {
			var d int16
			var u, p, s bool
			if err := q.Scan(&d, &u, &p, &s); err != nil {
				q.Close()
				return nil, err
			}
			var ops []string
			for i, ok := range []bool{u, p, s} {
				if ok {
					ops = append(ops, []string{"udr", "pur", "snr"}[i])
				}
			}
			r.Sh[store.DataReference(d).String()] = strings.Join(ops, ",")
		}
		q.Close()
		if err := q.Err(); err != nil {
			return nil, err
		}
		out = append(out, r.ASInfo)
	}
	return out, nil
}

// ---- scscf ----

func scscfCmd() *cli.Command {
	return &cli.Command{Name: "scscf", Usage: "S-CSCFs and their capabilities", Subcommands: []*cli.Command{
		{Name: "add", Usage: "add an S-CSCF", ArgsUsage: "SIP-URI",
			Flags: []cli.Flag{str("diameter-host", "Diameter identity of the S-CSCF"),
				str("mandatory", "mandatory capabilities, e.g. 1,2"), str("optional", "optional capabilities")},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := oneArg(c, "SIP-URI")
				if err != nil {
					return err
				}
				if l := strings.ToLower(name); !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") {
					return userErr("S-CSCF name %q must be a sip: or sips: URI", name)
				}
				m, err := intList("mandatory", c.String("mandatory"))
				if err != nil {
					return err
				}
				o, err := intList("optional", c.String("optional"))
				if err != nil {
					return err
				}
				tag, err := conn.Exec(c.Context, `INSERT INTO scscf (name, diameter_host, mandatory_capabilities, optional_capabilities)
					VALUES ($1, nullif($2, ''), $3, $4) ON CONFLICT (name) DO NOTHING`, name, c.String("diameter-host"), m, o)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 {
					return userErr("S-CSCF %s already exists", name)
				}
				fmt.Fprintf(c.App.Writer, "added S-CSCF %s\n", name)
				return nil
			})},
		{Name: "list", Usage: "list S-CSCFs", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				rows, err := conn.Query(c.Context, `SELECT name, coalesce(diameter_host, ''), mandatory_capabilities, optional_capabilities FROM scscf ORDER BY name`)
				if err != nil {
					return err
				}
				list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SCSCF, error) {
					var s store.SCSCF
					err := r.Scan(&s.Name, &s.DiameterHost, &s.MandatoryCapabilities, &s.OptionalCapabilities)
					return s, err
				})
				if err != nil {
					return err
				}
				if c.Bool("json") {
					if list == nil {
						list = []store.SCSCF{}
					}
					return printJSON(c.App.Writer, list)
				}
				for _, s := range list {
					fmt.Fprintf(c.App.Writer, "%s\tdiameter-host=%s\tmandatory=%v\toptional=%v\n", s.Name, s.DiameterHost, s.MandatoryCapabilities, s.OptionalCapabilities)
				}
				return nil
			})},
		{Name: "delete", Usage: "delete an S-CSCF", ArgsUsage: "SIP-URI",
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := oneArg(c, "SIP-URI")
				if err != nil {
					return err
				}
				if err := deleteByName(c.Context, conn, "scscf", "S-CSCF", name); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted S-CSCF %s\n", name)
				return nil
			})},
	}}
}
