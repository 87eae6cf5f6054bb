package provision

import (
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// Run runs the imsctl command tree on args (os.Args form). Unlike plain
// urfave/cli v2, flags may follow positional arguments
// ("imsctl as add mmtel --server-name sip:..."): Run moves positional
// arguments of the final command behind its flags first.
func Run(args []string, out io.Writer) error {
	app := App(out)
	return app.Run(Reorder(app, args))
}

// Reorder returns args with the positional arguments of the selected
// (sub)command moved after its flags; "--" ends flag parsing as usual.
func Reorder(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	flags := app.Flags
	cmds := app.Commands
	for {
		// copy leading flags of this level
		i := 0
		for i < len(rest) && strings.HasPrefix(rest[i], "-") && rest[i] != "--" {
			n := 1
			if takesValue(flags, rest[i]) && i+1 < len(rest) {
				n = 2
			}
			out = append(out, rest[i:i+n]...)
			i += n
		}
		rest = rest[i:]
		if len(rest) == 0 {
			return out
		}
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(rest[0]) {
				next = c
			}
		}
		if next == nil {
			break
		}
		out = append(out, rest[0])
		rest = rest[1:]
		flags, cmds = next.Flags, next.Subcommands
		if len(cmds) == 0 {
			break
		}
	}
	var pos []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(rest) {
				out = append(out, rest[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(out, pos...)
}

func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
