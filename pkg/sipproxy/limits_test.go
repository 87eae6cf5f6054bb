package sipproxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imscore/imscore/pkg/config"
)

// TestLimits: a request larger than Limits.MaxMessageBytes gets 513, one
// with more than Limits.MaxHeaders header fields 400; over TCP a message
// over the limit is answered and its connection closed.
func TestLimits(t *testing.T) {
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(200, "OK") }, func(c *Config) {
		c.Limits = Limits{MaxMessageBytes: 2000, MaxHeaders: 40}
	})
	if got := udpExchange(t, p, optionsWith("", "")); got != "SIP/2.0 200 OK" {
		t.Fatalf("small request: %s", got)
	}
	if got := udpExchange(t, p, optionsWith("", strings.Repeat("x", 2000))); !strings.HasPrefix(got, "SIP/2.0 513 Message Too Large (") {
		t.Errorf("large request: %s", got)
	}
	if got := udpExchange(t, p, optionsWith(strings.Repeat("X-Filler: 1\r\n", 40), "")); !strings.HasPrefix(got, "SIP/2.0 400 Bad Request (more than 40 header fields") {
		t.Errorf("many header fields: %s", got)
	}

	c, err := net.Dial("tcp", p.Addr("tcp").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	big := strings.Replace(optionsWith("", strings.Repeat("x", 2000)), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := c.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if !strings.HasPrefix(line, "SIP/2.0 513 ") {
		t.Errorf("TCP: %q %v", line, err)
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Errorf("TCP connection not closed: %v", err)
	}
}

// TestLimitDefaultsMatchFlags: the flags' defaults (pkg/config) are the
// proxy's.
func TestLimitDefaultsMatchFlags(t *testing.T) {
	if config.DefaultSIPBacklog != DefaultBacklog {
		t.Errorf("flag --sip-backlog %g, sipproxy %g", config.DefaultSIPBacklog, DefaultBacklog)
	}
	if config.DefaultSIPMaxMessageBytes != DefaultMaxMessageBytes || config.DefaultSIPMaxHeaders != DefaultMaxHeaders {
		t.Errorf("flags %d/%d, sipproxy %d/%d", config.DefaultSIPMaxMessageBytes, config.DefaultSIPMaxHeaders, DefaultMaxMessageBytes, DefaultMaxHeaders)
	}
}

// TestBadMessageMetric: every refused message is counted in
// sip_bad_messages_total by transport and answer.
func TestBadMessageMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(200, "OK") }, func(c *Config) { c.Registerer = reg })
	for i := 0; i < 3; i++ {
		if got := udpExchange(t, p, strings.Replace(optionsWith("", ""), "CSeq: 1 OPTIONS", "CSeq: 1 INVITE", 1)); !strings.HasPrefix(got, "SIP/2.0 400 ") {
			t.Fatalf("mismatched CSeq: %s", got)
		}
	}
	a := p.Addr("udp")
	c, _ := net.Dial("udp", a.String())
	defer c.Close()
	_, _ = c.Write([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n\r\n"))
	deadline := time.Now().Add(2 * time.Second)
	for testutil.ToFloat64(p.bad.counter.WithLabelValues("udp", "none")) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(p.bad.counter.WithLabelValues("udp", "400")); got != 3 {
		t.Errorf("udp 400: %v", got)
	}
	if got := testutil.ToFloat64(p.bad.counter.WithLabelValues("udp", "none")); got != 1 {
		t.Errorf("udp dropped: %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "sip_bad_messages_total"); err != nil || n != 2 {
		t.Errorf("registered series: %d %v", n, err)
	}
}

// TestResponseMetric: each final response sent upstream is counted once in
// sip_responses_total by method and code, a relayed one like a local one;
// two proxies on one registry share the counter.
func TestResponseMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		if tx.Request().Method == sip.REGISTER {
			_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target("udp"))
			return
		}
		_ = tx.Respond(404, "Not Found")
	}, func(c *Config) { c.Registerer = reg })
	p2 := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(486, "Busy Here") }, func(c *Config) { c.Registerer = reg })
	c := newClient(t)
	for i := 0; i < 2; i++ {
		if res := doReq(t, c, proxyReq(sip.REGISTER, p, "udp", "")); res.StatusCode != 200 {
			t.Fatalf("REGISTER: %d", res.StatusCode)
		}
	}
	if res := doReq(t, c, proxyReq(sip.OPTIONS, p, "udp", "bob")); res.StatusCode != 404 {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
	if res := doReq(t, c, proxyReq(sip.OPTIONS, p2, "udp", "bob")); res.StatusCode != 486 {
		t.Fatalf("OPTIONS to the second proxy: %d", res.StatusCode)
	}
	for _, w := range []struct {
		method, code string
		n            float64
	}{{"REGISTER", "200", 2}, {"OPTIONS", "404", 1}, {"OPTIONS", "486", 1}} {
		if got := testutil.ToFloat64(p.answers.WithLabelValues(w.method, w.code)); got != w.n {
			t.Errorf("sip_responses_total{method=%q,code=%q} = %v, want %v", w.method, w.code, got, w.n)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "sip_responses_total"); err != nil || n != 3 {
		t.Errorf("registered series: %d %v", n, err)
	}
}
