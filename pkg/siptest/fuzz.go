package siptest

import (
	"bytes"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imscore/imscore/pkg/sipproxy/rfc4475"
)

// EntryFuzzer drives a function's SIP entry point with fuzz inputs: each
// input is one UDP datagram sent to the function's listener; what comes
// back must be well-formed SIP/2.0 responses, and no handler may panic
// (sipproxy recovers a handler's panic and logs "handler panic", which
// the fuzzer's logger watches).
type EntryFuzzer struct {
	once   sync.Once
	start  func(log *zap.Logger) (addr string)
	addr   *net.UDPAddr
	conn   *net.UDPConn
	mu     sync.Mutex
	panics []string
}

// NewEntryFuzzer seeds f with every RFC 4475 torture message and returns a
// fuzzer for the function start starts (once per fuzzing process, with the
// logger to give it; it returns the function's UDP listening address).
// The function lives until the process ends: fuzzing runs it for every
// input of the process.
func NewEntryFuzzer(f *testing.F, start func(log *zap.Logger) (addr string)) *EntryFuzzer {
	for _, c := range rfc4475.Cases() {
		f.Add(c.Message())
	}
	return &EntryFuzzer{start: start}
}

// Send sends data to the function and checks the answers that arrive
// within a short wait (answers to earlier inputs may arrive with them).
func (e *EntryFuzzer) Send(t *testing.T, data []byte) {
	e.once.Do(func() {
		watch := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(panicWriter{e}), zapcore.ErrorLevel)
		addr := e.start(zap.New(watch))
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			panic(err)
		}
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			panic(err)
		}
		e.addr, e.conn = ua, c
	})
	if len(data) > 65000 {
		return // not a datagram
	}
	if _, err := e.conn.WriteTo(data, e.addr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(30 * time.Millisecond)
	for {
		_ = e.conn.SetReadDeadline(deadline)
		n, _, err := e.conn.ReadFrom(buf)
		if err != nil {
			break
		}
		// A response: SIP/2.0 status line, header section ended, no NUL.
		// (An answer to a request with a malformed Via carries that Via
		// back, so it need not parse as a whole.)
		if !statusLine.Match(buf[:n]) || !bytes.Contains(buf[:n], []byte("\r\n\r\n")) || bytes.IndexByte(buf[:n], 0) >= 0 {
			t.Fatalf("answer is not a SIP/2.0 response:\n%q", buf[:n])
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.panics) > 0 {
		t.Fatalf("a handler panicked:\n%s", strings.Join(e.panics, "\n"))
	}
}

var statusLine = regexp.MustCompile(`^SIP/2\.0 [1-6][0-9][0-9] [^\r\n]*\r\n`)

type panicWriter struct{ e *EntryFuzzer }

func (w panicWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("panic")) {
		w.e.mu.Lock()
		w.e.panics = append(w.e.panics, string(p))
		w.e.mu.Unlock()
	}
	return len(p), nil
}
