package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tcpPair returns a wrapped client connection and the server's end (net's).
func tcpPair(t *testing.T, network, addr string) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- c
	}()
	c, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.Fatal("accept failed")
	}
	w := Stream(c)
	if _, ok := w.(*Conn); !ok {
		t.Fatalf("Stream(%T) was not wrapped", c)
	}
	t.Cleanup(func() { w.Close(); s.Close() })
	return w, s
}

// Bytes cross both ways unchanged, a write larger than the socket buffers
// completes while the reader is slow (write(2) in parts, waits on the
// poller), and the peer's close reads as io.EOF, for TCP and Unix sockets.
func TestStreamCarriesBytes(t *testing.T) {
	for _, tc := range []struct{ name, network, addr string }{
		{"tcp", "tcp", "127.0.0.1:0"},
		{"unix", "unix", filepath.Join(t.TempDir(), "s")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t, tc.network, tc.addr)
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
			werr := make(chan error, 1)
			go func() {
				n, err := c.Write(big)
				if err == nil && n != len(big) {
					err = io.ErrShortWrite
				}
				werr <- err
			}()
			time.Sleep(50 * time.Millisecond) // let the buffers fill
			got := make([]byte, len(big))
			if _, err := io.ReadFull(s, got); err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, big) {
				t.Fatal("bytes changed on the way")
			}

			if _, err := s.Write([]byte("answer")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "answer" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			s.Close()
			if n, err := c.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("after the peer closed: %d, %v; want 0, io.EOF", n, err)
			}
		})
	}
}

// Deadlines time reads out as net's do, Close ends a blocked read with
// net.ErrClosed, and a write to a reset connection fails.
func TestStreamDeadlineCloseAndReset(t *testing.T) {
	c, s := tcpPair(t, "tcp", "127.0.0.1:0")
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})

	readEndsOnClose(t, func() error {
		_, err := c.Read(make([]byte, 8))
		return err
	}, c.Close)

	c2, s2 := tcpPair(t, "tcp", "127.0.0.1:0")
	s2.(*net.TCPConn).SetLinger(0)
	s2.Close() // RST
	s.Close()
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		_, werr = c2.Write([]byte("x"))
		time.Sleep(5 * time.Millisecond)
	}
	if werr == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
}

// Only connections whose descriptors net owns are wrapped.
func TestStreamLeavesOthersAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Stream(a) != a {
		t.Fatal("a pipe was wrapped")
	}
	c, _ := tcpPair(t, "tcp", "127.0.0.1:0")
	if Stream(c) != c {
		t.Fatal("a wrapped connection was wrapped again")
	}
}

// Under the race detector, data handed from one goroutine to another
// through a connection is ordered as net's connections order it, in both
// directions between a wrapped end and net's: this test reports races
// (and fails under -race) when the raw calls skip syscall.Read/Write's
// annotations.
func TestStreamOrdersGoroutinesForTheRaceDetector(t *testing.T) {
	c, srv := tcpPair(t, "tcp", "127.0.0.1:0")
	var shared [2]int
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 8)
		if _, err := c.Read(buf); err != nil { // wrapped reads what net wrote
			t.Error(err)
			return
		}
		_ = shared[0]
		shared[1] = 1
		if _, err := c.Write([]byte("z")); err != nil { // net reads what wrapped wrote
			t.Error(err)
		}
	}()
	shared[0] = 1
	if _, err := srv.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	_ = shared[1]
	<-done
}

// readEndsOnClose runs read, blocked for lack of data, then closes the
// socket: the read must end with net.ErrClosed.
func readEndsOnClose(t *testing.T, read func() error, closeIt func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- read() }()
	time.Sleep(20 * time.Millisecond)
	closeIt()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed socket: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("read did not end when the socket closed")
	}
}
