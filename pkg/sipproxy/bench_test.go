package sipproxy

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// BenchmarkProxyRegister forwards REGISTER UAC -> proxy -> UAS -> back over
// UDP loopback; one op is one full transaction round trip.
func BenchmarkProxyRegister(b *testing.B) {
	uas := newUAS(b, func(s *sipgo.Server) {
		s.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	p := newTestProxy(b, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target("udp"))
	})
	c := newClient(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := doReq(b, c, proxyReq(sip.REGISTER, p, "udp", ""))
		if res.StatusCode != 200 {
			b.Fatalf("got %d", res.StatusCode)
		}
	}
}

// TestCloseLeavesNoGoroutines starts a proxy, runs a transaction, closes it
// and checks the goroutine count returns to its starting level.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		p, err := New(Config{ListenAddr: "127.0.0.1:0", Handler: func(ctx context.Context, tx *Txn) { _ = tx.Respond(200, "OK") }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		ua, _ := sipgo.NewUA()
		c, _ := sipgo.NewClient(ua)
		if res := doReq(t, c, proxyReq(sip.OPTIONS, p, "tcp", "x")); res.StatusCode != 200 {
			t.Fatalf("got %d", res.StatusCode)
		}
		_ = ua.Close()
		cancel() // Start's ctx closes the proxy
		deadline := time.Now().Add(2 * time.Second)
		for p.Addr("udp") != nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
