package diamtest

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/imscore/imscore/pkg/diameter"
)

// Options configures Run.
type Options struct {
	// Expect lists commands ("UAA", "RTR", "CEA") the package's tests must
	// make a checked sender write at least once. It is enforced only when
	// the whole test suite ran (no -run, -skip or -list flag), so running
	// one test by name does not fail for commands other tests send.
	Expect []string
	// Hosts, when not empty, restricts the checks (and Expect) to
	// messages written by nodes with one of these Origin-Hosts
	// (case-insensitive): the code under test, not the test's own peers.
	Hosts []string
	// Skip, when set, exempts a message from the checks, e.g. a request a
	// test makes malformed on purpose. It gets the sender's Origin-Host,
	// the command's short name and the wire bytes.
	Skip func(host, command string, wire []byte) bool
	// Output receives the report; default os.Stderr. With the environment
	// variable DIAMTEST_DUMP set, the first message of each command is
	// dumped too.
	Output io.Writer
	// MaxReports bounds the messages printed in full per distinct
	// violation (default 3); the rest are counted.
	MaxReports int
}

// Observed is one message a Node of the process wrote.
type Observed struct {
	Host string // the sender's configured Origin-Host
	Wire []byte
}

// Recorder collects every message the process's Nodes write (see
// diameter.ObserveSent) until Stop.
type Recorder struct {
	mu   sync.Mutex
	msgs []Observed
	stop func()
}

// Record starts recording. Only one recorder (or other ObserveSent user)
// can be active in a process at a time.
func Record() *Recorder {
	r := &Recorder{}
	r.stop = diameter.ObserveSent(func(host string, wire []byte) {
		b := append([]byte(nil), wire...)
		r.mu.Lock()
		r.msgs = append(r.msgs, Observed{Host: host, Wire: b})
		r.mu.Unlock()
	})
	return r
}

// Stop ends the recording and returns the messages in write order.
func (r *Recorder) Stop() []Observed {
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Observed(nil), r.msgs...)
}

// Messages returns what was recorded so far.
func (r *Recorder) Messages() []Observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Observed(nil), r.msgs...)
}

// RunConformance is for a package's TestMain: it records every Diameter
// message the package's tests make our Nodes write, runs m.Run(), checks
// each message with Check (and each answer whose request was recorded too
// with CheckPair), and returns non-zero (after printing every
// violation with the command, the sender's Origin-Host and a dump of the
// message) when a message violates the specification tables or when a
// command in expect was never written. Use it as
// os.Exit(diamtest.RunConformance(m, "UAA", "MAA")).
func RunConformance(m *testing.M, expect ...string) int {
	return Run(m, Options{Expect: expect})
}

// Run is RunConformance with options.
func Run(m *testing.M, o Options) int {
	rec := Record()
	code := m.Run()
	msgs := rec.Stop()
	if bad := Report(msgs, o, fullRun()); bad && code == 0 {
		code = 1
	}
	return code
}

// fullRun reports whether the whole test suite ran (no test selection
// flags), so that expected commands can be required.
func fullRun() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// Report checks msgs as Run does and prints the result to o.Output; it
// returns true when something is wrong. requireExpected enforces
// o.Expect.
func Report(msgs []Observed, o Options, requireExpected bool) bool {
	w := o.Output
	if w == nil {
		w = os.Stderr
	}
	max := o.MaxReports
	if max <= 0 {
		max = 3
	}
	hosts := map[string]bool{}
	for _, h := range o.Hosts {
		hosts[strings.ToLower(h)] = true
	}
	type group struct {
		first []string // full reports
		count int
	}
	groups := map[string]*group{}
	var order []string
	seen := map[string]int{}
	checked := 0
	dump := os.Getenv("DIAMTEST_DUMP") != ""
	// Requests by (Command-Code, Hop-by-Hop, End-to-End), whoever sent
	// them, to check each answer against its request (CheckPair).
	type reqKey struct{ code, hbh, e2e uint32 }
	keyOf := func(b []byte) reqKey {
		return reqKey{binary.BigEndian.Uint32(b[4:8]) & 0xffffff, binary.BigEndian.Uint32(b[12:16]), binary.BigEndian.Uint32(b[16:20])}
	}
	requests := map[reqKey][]byte{}
	for _, msg := range msgs {
		if len(msg.Wire) >= 20 && IsRequest(msg.Wire) {
			requests[keyOf(msg.Wire)] = msg.Wire
		}
	}
	for _, msg := range msgs {
		if len(hosts) > 0 && !hosts[strings.ToLower(msg.Host)] {
			continue
		}
		cmd := CommandName(msg.Wire)
		if o.Skip != nil && o.Skip(msg.Host, cmd, msg.Wire) {
			continue
		}
		checked++
		seen[cmd]++
		if dump && seen[cmd] == 1 {
			fmt.Fprintf(w, "diamtest: first %s, sent by %q:\n%s\n", cmd, msg.Host, indent(Dump(msg.Wire), "    "))
		}
		vs := Check(msg.Wire)
		if len(msg.Wire) >= 20 && !IsRequest(msg.Wire) {
			if req, ok := requests[keyOf(msg.Wire)]; ok {
				vs = append(vs, CheckPair(req, msg.Wire)...)
			}
		}
		if len(vs) == 0 {
			continue
		}
		var lines []string
		for _, v := range vs {
			lines = append(lines, v.String())
		}
		key := msg.Host + "\x00" + strings.Join(lines, "\n")
		g := groups[key]
		if g == nil {
			g = &group{}
			groups[key] = g
			order = append(order, key)
		}
		g.count++
		if len(g.first) < max {
			g.first = append(g.first, fmt.Sprintf("%s sent by %q violates the specification:\n  %s\n%s",
				cmd, msg.Host, strings.Join(lines, "\n  "), indent(Dump(msg.Wire), "    ")))
		}
	}
	bad := false
	for _, key := range order {
		bad = true
		g := groups[key]
		for _, r := range g.first {
			fmt.Fprintf(w, "diamtest: %s\n", r)
		}
		if g.count > len(g.first) {
			fmt.Fprintf(w, "diamtest: ... and %d more message(s) with the same violations\n", g.count-len(g.first))
		}
	}
	var missing []string
	for _, e := range o.Expect {
		if seen[strings.ToUpper(e)] == 0 {
			missing = append(missing, strings.ToUpper(e))
		}
	}
	if len(missing) > 0 {
		if requireExpected {
			bad = true
			fmt.Fprintf(w, "diamtest: conformance: the tests never made a checked node send %s (expected: %s)\n",
				strings.Join(missing, ", "), strings.Join(o.Expect, ", "))
		} else {
			fmt.Fprintf(w, "diamtest: conformance: not sent in this partial run: %s\n", strings.Join(missing, ", "))
		}
	}
	var summary []string
	for cmd, n := range seen {
		summary = append(summary, fmt.Sprintf("%s×%d", cmd, n))
	}
	sort.Strings(summary)
	status := "ok"
	if bad {
		status = "FAILED"
	}
	if bad || testing.Verbose() {
		fmt.Fprintf(w, "diamtest: conformance %s: %d message(s) checked: %s\n", status, checked, strings.Join(summary, " "))
	}
	return bad
}

func indent(s, p string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = p + lines[i]
	}
	return strings.Join(lines, "\n")
}
