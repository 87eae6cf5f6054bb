package provision

// imsctl commands for service profiles, iFCs, application servers and
// S-CSCFs: flags in, the operations of this package out.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

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

func nameArg(c *cli.Context) (string, error) { return oneArg(c, "NAME") }

// all pages through a list operation.
func all[T any](c *cli.Context, conn *pgx.Conn, list func(o ListOptions) ([]T, bool, error), key func(T) string) ([]T, error) {
	out := []T{}
	o := ListOptions{Limit: MaxLimit}
	for {
		page, more, err := list(o)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if !more {
			return out, nil
		}
		o.After = key(page[len(page)-1])
	}
}

// profileIFCs parses --ifc NAME[:PRIORITY] values.
func profileIFCs(vals []string) ([]ProfileIFC, error) {
	var out []ProfileIFC
	for _, f := range vals {
		name, prio, hasPrio := strings.Cut(f, ":")
		x := ProfileIFC{Name: name}
		if hasPrio {
			n, err := strconv.ParseInt(prio, 10, 32)
			if err != nil || n < 0 {
				return nil, userErr("--ifc %q: priority must be a non-negative integer", f)
			}
			p := int32(n)
			x.Priority = &p
		}
		out = append(out, x)
	}
	return out, nil
}

func sharedSets(vals []string) ([]int32, error) {
	var out []int32
	for _, s := range vals {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 0 {
			return nil, userErr("--shared-ifc-set %q must be a non-negative integer", s)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

func (p ProfileIFC) String() string {
	if p.Priority == nil {
		return p.Name
	}
	return fmt.Sprintf("%s:%d", p.Name, *p.Priority)
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
				p := Profile{Name: name}
				if p.IFCs, err = profileIFCs(c.StringSlice("ifc")); err != nil {
					return err
				}
				if p.SharedIFCSets, err = sharedSets(c.StringSlice("shared-ifc-set")); err != nil {
					return err
				}
				if v := c.Int("media-profile-id"); v >= 0 {
					m := int32(v)
					p.SubscribedMediaProfileID = &m
				}
				if _, err := CreateProfile(c.Context, conn, p); err != nil {
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
				ifcs, err := profileIFCs(c.StringSlice("ifc"))
				if err != nil {
					return err
				}
				sets, err := sharedSets(c.StringSlice("shared-ifc-set"))
				if err != nil {
					return err
				}
				if err := AddToProfile(c.Context, conn, name, ifcs, sets); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "updated profile %s\n", name)
				return nil
			})},
		{Name: "list", Usage: "list service profiles", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				ps, err := all(c, conn, func(o ListOptions) ([]Profile, bool, error) { return ListProfiles(c.Context, conn, o) },
					func(p Profile) string { return p.Name })
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, ps)
				}
				for _, p := range ps {
					var fs []string
					for _, f := range p.IFCs {
						fs = append(fs, f.String())
					}
					fmt.Fprintf(c.App.Writer, "%s\tifcs=%s\timpus=%d\n", p.Name, strings.Join(fs, ","), p.IMPUs)
				}
				return nil
			})},
		{Name: "show", Usage: "show a service profile", ArgsUsage: "NAME", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				p, err := GetProfile(c.Context, conn, name)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, p)
				}
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
				if err := DeleteProfile(c.Context, conn, name, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted profile %s\n", name)
				return nil
			})},
	}}
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
				if c.Int("priority") < 0 {
					return userErr("--priority must not be negative")
				}
				spts, err := TriggerInput{Methods: c.StringSlice("method"), RequestURIs: c.StringSlice("ruri"),
					Headers: c.StringSlice("header"), SessionCases: c.StringSlice("session-case"), SDPs: c.StringSlice("sdp"),
					RegistrationTypes: c.StringSlice("registration-type"), DNF: c.Bool("dnf")}.Parse()
				if err != nil {
					return err
				}
				f := IFC{Name: name, Priority: int32(c.Int("priority")), ProfilePart: strings.ToLower(c.String("profile-part")),
					ApplicationServer: c.String("as"), ConditionType: "cnf", SPTs: spts}
				if c.Bool("dnf") {
					f.ConditionType = "dnf"
				}
				if _, err := CreateIFC(c.Context, conn, f, c.StringSlice("profile")...); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "added iFC %s\n", name)
				return nil
			})},
		{Name: "list", Usage: "list iFCs", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				fs, err := all(c, conn, func(o ListOptions) ([]IFC, bool, error) { return ListIFCs(c.Context, conn, o) },
					func(f IFC) string { return f.Name })
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, fs)
				}
				for _, f := range fs {
					fmt.Fprintf(c.App.Writer, "%s\tpriority=%d\tas=%s\ttrigger: %s\n", f.Name, f.Priority, f.ApplicationServer, f.Trigger)
				}
				return nil
			})},
		{Name: "show", Usage: "show an iFC", ArgsUsage: "NAME", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				f, err := GetIFC(c.Context, conn, name)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, f)
				}
				fmt.Fprintf(c.App.Writer, "iFC %s\n  priority: %d\n  application server: %s\n  trigger: %s\n", f.Name, f.Priority, f.ApplicationServer, f.Trigger)
				if f.ProfilePart != "" {
					fmt.Fprintf(c.App.Writer, "  profile part: %s\n", f.ProfilePart)
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
				if err := DeleteIFC(c.Context, conn, name, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted iFC %s\n", name)
				return nil
			})},
	}}
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
				a := AppServer{Name: name, ServerName: c.String("server-name"), DefaultHandling: c.String("default-handling"),
					ServiceInfo: c.String("service-info"), IncludeRegisterRequest: c.Bool("include-register-request"),
					IncludeRegisterResponse: c.Bool("include-register-response"), DiameterHost: c.String("diameter-host")}
				for _, p := range c.StringSlice("sh") {
					ref, ops, _ := strings.Cut(p, "=")
					if a.Sh == nil {
						a.Sh = map[string][]string{}
					}
					a.Sh[ref] = append(a.Sh[ref], strings.Split(ops, ",")...)
				}
				if _, err := CreateAS(c.Context, conn, a); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "added application server %s (%s)\n", name, a.ServerName)
				return nil
			})},
		{Name: "list", Usage: "list application servers", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				as, err := all(c, conn, func(o ListOptions) ([]AppServer, bool, error) { return ListAS(c.Context, conn, o) },
					func(a AppServer) string { return a.Name })
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
				a, err := GetAS(c.Context, conn, name)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, a)
				}
				fmt.Fprintf(c.App.Writer, "application server %s\n  server name: %s\n  default handling: %s\n  service info: %s\n  include REGISTER request/response: %v/%v\n  diameter host: %s\n",
					a.Name, a.ServerName, a.DefaultHandling, a.ServiceInfo, a.IncludeRegisterRequest, a.IncludeRegisterResponse, a.DiameterHost)
				refs := make([]string, 0, len(a.Sh))
				for ref := range a.Sh {
					refs = append(refs, ref)
				}
				sort.Strings(refs)
				for _, ref := range refs {
					fmt.Fprintf(c.App.Writer, "  sh %s: %s\n", ref, strings.Join(a.Sh[ref], ","))
				}
				return nil
			})},
		{Name: "delete", Usage: "delete an application server no iFC uses", ArgsUsage: "NAME",
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				name, err := nameArg(c)
				if err != nil {
					return err
				}
				if err := DeleteAS(c.Context, conn, name, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted application server %s\n", name)
				return nil
			})},
	}}
}

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
				s := SCSCF{Name: name, DiameterHost: c.String("diameter-host")}
				if s.MandatoryCapabilities, err = intList("mandatory", c.String("mandatory")); err != nil {
					return err
				}
				if s.OptionalCapabilities, err = intList("optional", c.String("optional")); err != nil {
					return err
				}
				if _, err := CreateSCSCF(c.Context, conn, s); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "added S-CSCF %s\n", name)
				return nil
			})},
		{Name: "list", Usage: "list S-CSCFs", Flags: []cli.Flag{jsonFlag},
			Action: withConn(func(c *cli.Context, conn *pgx.Conn) error {
				list, err := all(c, conn, func(o ListOptions) ([]SCSCF, bool, error) { return ListSCSCFs(c.Context, conn, o) },
					func(s SCSCF) string { return s.Name })
				if err != nil {
					return err
				}
				if c.Bool("json") {
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
				if err := DeleteSCSCF(c.Context, conn, name, nil); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted S-CSCF %s\n", name)
				return nil
			})},
	}}
}
