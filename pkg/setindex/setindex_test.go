package setindex

import (
	"slices"
	"testing"
)

func entries(ix Index[string, int], k string) []int {
	var out []int
	ix.Each(k, func(v int) bool { out = append(out, v); return true })
	slices.Sort(out)
	return out
}

func TestIndex(t *testing.T) {
	ix := New[string, int]()
	ix.Add("a", 0) // the zero value is an entry like any other
	ix.Add("a", 0)
	if got := entries(ix, "a"); !slices.Equal(got, []int{0}) || !ix.Has("a") {
		t.Fatalf("one: %v", got)
	}
	ix.Add("a", 2)
	ix.Add("a", 3)
	if got := entries(ix, "a"); !slices.Equal(got, []int{0, 2, 3}) {
		t.Fatalf("three: %v", got)
	}
	ix.Remove("a", 2)
	ix.Remove("a", 9) // absent: nothing happens
	ix.Remove("b", 0)
	if got := entries(ix, "a"); !slices.Equal(got, []int{0, 3}) {
		t.Fatalf("two: %v", got)
	}
	ix.Remove("a", 0)
	if got := entries(ix, "a"); !slices.Equal(got, []int{3}) || len(ix.many) != 0 || ix.one["a"] != 3 {
		t.Fatalf("back to one in a plain slot: %v %+v", got, ix)
	}
	ix.Remove("a", 3)
	if ix.Has("a") || ix.Len() != 0 {
		t.Fatalf("empty: %+v", ix)
	}
	// Each stops when fn says so.
	for v := range 5 {
		ix.Add("c", v)
	}
	n := 0
	ix.Each("c", func(int) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Each went on after false: %d calls", n)
	}
}
