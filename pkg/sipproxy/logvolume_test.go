package sipproxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// This file uses only what the proxy had before its validating layer, so
// that it can show the old log volume (run it against an old tree).

func optionsWith(extra string, body string) string {
	return "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKlim1;rport\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:bob@b>\r\nCall-ID: lim1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n" + extra +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// udpClient is a UDP socket of the test (closed at its end) and p's UDP
// address.
func udpClient(t *testing.T, p *Proxy) (*net.UDPConn, *net.UDPAddr) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a := p.Addr("udp")
	return c, &net.UDPAddr{IP: a.IP, Port: a.Port}
}

// readAnswer returns the next datagram c receives within the wait, 100
// Trying skipped; "" when none comes.
func readAnswer(c *net.UDPConn, within time.Duration) string {
	for {
		_ = c.SetReadDeadline(time.Now().Add(within))
		b := make([]byte, 65535)
		n, _, err := c.ReadFrom(b)
		if err != nil {
			return ""
		}
		if !strings.HasPrefix(string(b[:n]), "SIP/2.0 100 ") {
			return string(b[:n])
		}
	}
}

// udpExchange sends msg to p and returns the status line of the answer.
func udpExchange(t *testing.T, p *Proxy, msg string) string {
	t.Helper()
	c, to := udpClient(t, p)
	if _, err := c.WriteTo([]byte(msg), to); err != nil {
		t.Fatal(err)
	}
	a := readAnswer(c, 3*time.Second)
	if a == "" {
		t.Fatal("no answer")
	}
	line, _, _ := strings.Cut(a, "\r\n")
	return line
}

// countingWriter counts the bytes logged.
type countingWriter struct {
	mu sync.Mutex
	n  int
	b  bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n += len(p)
	if w.b.Len() < 4096 {
		w.b.Write(p)
	}
	return len(p), nil
}

func (w *countingWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// junkDatagram is one of n unparsable datagrams of about 600 bytes.
func junkDatagram(i int) []byte {
	return []byte(fmt.Sprintf("INVITE sip:%d@example.com SIP/2.0\r\nVia: %s\r\nFrom: \x00%s\r\n\r\n", i,
		strings.Repeat("garbage ", 40), strings.Repeat("noise", 50)))
}

// TestBadMessageLogVolume sends 400 unparsable datagrams from 4 sockets of
// one host and checks that the log grows by less than 16 bytes per
// datagram: a bad message is logged once per source per interval and
// never whole. (Before the validating layer sipgo logged each datagram
// whole at ERROR: over 700 bytes each.)
func TestBadMessageLogVolume(t *testing.T) {
	w := &countingWriter{}
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(200, "OK") }, func(c *Config) {
		c.Logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(w), zapcore.InfoLevel))
	})
	a := p.Addr("udp")
	to := &net.UDPAddr{IP: a.IP, Port: a.Port}
	before := w.count()
	const n = 400
	for s := 0; s < 4; s++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < n/4; i++ {
			if _, err := c.WriteTo(junkDatagram(i), to); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Then a valid request: once it is answered, the junk before it has
	// been read.
	if got := udpExchange(t, p, optionsWith("", "")); got != "SIP/2.0 200 OK" {
		t.Fatalf("valid request after the junk: %s", got)
	}
	time.Sleep(200 * time.Millisecond)
	logged := w.count() - before
	if per := float64(logged) / n; per >= 16 {
		t.Errorf("%d log bytes for %d bad datagrams (%.0f per datagram):\n%s", logged, n, per, w.b.String())
	}
}
