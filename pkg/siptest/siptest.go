// Package siptest holds the SIP test helpers that several packages' tests
// share, so that each test file does not build its own sipgo plumbing.
package siptest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewClient returns a sipgo client on its own user agent, closed when the
// test ends. It fails the test if sipgo cannot create either.
func NewClient(t testing.TB) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatalf("sipgo user agent: %v", err)
	}
	c, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatalf("sipgo client: %v", err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	return c
}

// Logger returns a debug-level zap logger that writes to t's log until
// the test's clean-ups have run, and drops lines after that: sipgo's
// transaction goroutines (an ACK's timer, say) may still log after the
// server under test was closed, and testing.T must not be written to once
// the test has ended (the race detector reports it). Call it before
// registering the clean-ups that stop the code under test, so that the
// gate closes after them.
func Logger(t testing.TB) *zap.Logger {
	w := &gatedTestWriter{t: t}
	t.Cleanup(w.close)
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.DebugLevel))
}

type gatedTestWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *gatedTestWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *gatedTestWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// FreePort returns a port of 127.0.0.1 free for both TCP and UDP when
// asked, for a process the test starts to bind (a SIP listener takes
// both). It is chosen below the kernel's ephemeral range
// (ip_local_port_range, 32768–60999 by default): a port from that range
// can be handed to an outgoing connection (to PostgreSQL, a Diameter peer)
// between this check and the bind, which then fails with "address already
// in use". One test process never gets the same port twice. Test
// processes running at once (go test runs packages in parallel) draw from
// different 1,000-port blocks chosen by their PID first, so that two of
// them rarely pick the same port between one's check and its bind.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	block := 20000 + os.Getpid()%12*1000
	for i := range 10000 {
		port := block + rand.IntN(1000)
		if i >= 2000 { // the block is crowded: the whole range
			port = 20000 + rand.IntN(12000)
		}
		if portsGiven[port] || !PortFree(port) {
			continue
		}
		portsGiven[port] = true
		return port
	}
	t.Fatal("siptest: no free port below the ephemeral range")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// PortFree tells whether port can be bound on 127.0.0.1 for TCP and UDP.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	u.Close()
	return true
}
