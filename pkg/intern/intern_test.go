package intern

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func TestEqualValuesShareOneCopy(t *testing.T) {
	p := New(16, 64)
	line := "Path: <sip:term@pcscf.ims.example.org:5060;lr>"
	a := p.String(line[6:])
	b := p.String(strings.Clone(line[6:]))
	if a != line[6:] || b != a {
		t.Fatalf("values changed: %q %q", a, b)
	}
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("two equal values kept as two copies")
	}
	if unsafe.StringData(a) == unsafe.StringData(line[6:]) {
		t.Fatal("the pooled copy is a slice of the caller's larger string")
	}
	if p.Len() != 1 {
		t.Fatalf("Len = %d, want 1", p.Len())
	}
}

func TestBounds(t *testing.T) {
	p := New(2, 8)
	long := strings.Repeat("x", 9)
	if got := p.String(long); unsafe.StringData(got) != unsafe.StringData(long) {
		t.Fatal("a value longer than maxLen was copied")
	}
	p.String("a")
	p.String("b")
	c := strings.Clone("c")
	if got := p.String(c); unsafe.StringData(got) != unsafe.StringData(c) || p.Len() != 2 {
		t.Fatalf("a full pool took a new value (Len %d)", p.Len())
	}
	if p.String("") != "" {
		t.Fatal("empty string changed")
	}
}

func TestConcurrent(t *testing.T) {
	p := New(1000, 64)
	var wg sync.WaitGroup
	got := make([][]string, 8)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				got[g] = append(got[g], p.String(fmt.Sprintf("sip:pcscf-%d.example.org;lr", i)))
			}
		}()
	}
	wg.Wait()
	if p.Len() != 100 {
		t.Fatalf("Len = %d, want 100", p.Len())
	}
	for g := 1; g < len(got); g++ {
		for i := range got[g] {
			if unsafe.StringData(got[g][i]) != unsafe.StringData(got[0][i]) {
				t.Fatalf("value %d: goroutines got different copies", i)
			}
		}
	}
}

// TestProcessPool: String and Strings share through the one process pool.
func TestProcessPool(t *testing.T) {
	a := String(strings.Clone("sip:orig@scscf.example.org;lr"))
	ss := Strings([]string{strings.Clone("sip:orig@scscf.example.org;lr")})
	if unsafe.StringData(a) != unsafe.StringData(ss[0]) {
		t.Fatal("String and Strings kept two copies")
	}
}
