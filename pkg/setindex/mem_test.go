package setindex

import (
	"fmt"
	"runtime"
	"testing"
)

// heapPerEntry files n values, each held by one entry (the common case),
// and returns the heap the index holds per value, keys and entries
// excluded (they are made before the first measurement).
func heapPerEntry(n int, build func(keys, vals []string) any) float64 {
	keys := make([]string, n)
	vals := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("udp|10.%d.%d.%d:5060", i>>16, (i>>8)&255, i&255)
		vals[i] = fmt.Sprint("contact-", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix := build(keys, vals)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ix)
	runtime.KeepAlive(keys)
	runtime.KeepAlive(vals)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestHeapPerEntry: a value held by one entry costs a plain map slot.
// The index held 63 bytes per such value (string keys and entries) while
// each slot carried room for a set; 56 is the bound.
func TestHeapPerEntry(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	const n = 100000
	b := heapPerEntry(n, func(keys, vals []string) any {
		ix := New[string, string]()
		for i := range keys {
			ix.Add(keys[i], vals[i])
		}
		return ix
	})
	t.Logf("%.1f bytes per value held by one entry", b)
	if b > 56 {
		t.Fatalf("%.1f bytes per value held by one entry, want at most 56", b)
	}
}
