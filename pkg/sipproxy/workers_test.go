package sipproxy

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// goroutineID is the number in the first line of this goroutine's trace.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 {
		return ""
	}
	return string(f[1])
}

// TestHandlersReuseGoroutines: requests one after another are served by
// the same handler goroutine (its grown stack kept), not by a new goroutine
// each, which is what sipgo alone gives; requests at once still run at once.
func TestHandlersReuseGoroutines(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	gate := make(chan struct{})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		mu.Lock()
		seen[goroutineID()]++
		mu.Unlock()
		if tx.Request().Recipient.User == "wait" {
			<-gate
		}
		_ = tx.Respond(200, "OK")
	})
	c := newClient(t)
	for range 30 {
		if res := doReq(t, c, proxyReq(sip.OPTIONS, p, "udp", "x")); res.StatusCode != 200 {
			t.Fatalf("got %d", res.StatusCode)
		}
	}
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	if n > 3 {
		t.Errorf("30 requests in turn ran on %d goroutines, want at most 3", n)
	}

	// Ten requests held by the handler at once: each needs its own goroutine.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := doReq(t, c, proxyReq(sip.OPTIONS, p, "udp", "wait")); res.StatusCode != 200 {
				t.Errorf("got %d", res.StatusCode)
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.workers.running.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r := p.workers.running.Load(); r < 10 {
		t.Errorf("%d handler goroutines for 10 requests held at once", r)
	}
	close(gate)
	wg.Wait()
}
