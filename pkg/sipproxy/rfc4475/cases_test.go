package rfc4475

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
)

func TestEveryFileHasACase(t *testing.T) {
	names := map[string]bool{}
	for _, c := range Cases() {
		if names[c.Name] {
			t.Errorf("case %s twice", c.Name)
		}
		names[c.Name] = true
		if c.Want == Reject && len(c.Codes) == 0 {
			t.Errorf("%s: rejected without a code", c.Name)
		}
	}
	n := 0
	_ = fs.WalkDir(files, "testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimSuffix(path[strings.LastIndex(path, "/")+1:], ".sip")
		if !names[name] {
			t.Errorf("%s has no case", path)
		}
		n++
		return nil
	})
	if n != len(names) {
		t.Errorf("%d files, %d cases", n, len(names))
	}
	rfc := 0
	for _, c := range Cases() {
		if c.Section != "" {
			rfc++
		}
	}
	if rfc != 49 {
		t.Errorf("%d RFC 4475 cases, want 49", rfc)
	}
}

// TestExpand checks the RFC 4475 §2 notation on messages whose wire form
// the RFC describes.
func TestExpand(t *testing.T) {
	get := func(name string) []byte {
		for _, c := range Cases() {
			if c.Name == name {
				return c.Message()
			}
		}
		t.Fatalf("no case %s", name)
		return nil
	}
	trws := get("trws")
	if !bytes.HasPrefix(trws, []byte("OPTIONS sip:remote-target@example.com SIP/2.0  \r\nVia:")) {
		t.Errorf("trws start %q", trws[:60])
	}
	intmeth := get("intmeth")
	if !bytes.Contains(intmeth, []byte("\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\"")) {
		t.Errorf("intmeth To: %q", intmeth)
	}
	if bytes.Count(intmeth, []byte("\r\n")) != 10 {
		t.Errorf("intmeth: %d lines", bytes.Count(intmeth, []byte("\r\n")))
	}
	longreq := get("longreq")
	if !bytes.Contains(longreq, []byte("tag=12"+strings.Repeat("982", 50)+"424;")) {
		t.Error("longreq: repeat not expanded")
	}
	// Every body that the RFC calls complete has exactly Content-Length octets.
	for name, cl := range map[string]int{"wsinv": 150, "esc01": 150, "longreq": 150, "mpart01": 307, "invut": 40} {
		m := get(name)
		i := bytes.Index(m, []byte("\r\n\r\n"))
		if got := len(m) - i - 4; got != cl {
			t.Errorf("%s: body of %d octets, Content-Length %d", name, got, cl)
		}
	}
}
