package rawsock

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
)

// Conn is a stream connection (*net.TCPConn, *net.UnixConn) whose Read
// and Write use raw read(2) and write(2). Every other method is the
// wrapped connection's; Unwrap returns it.
type Conn struct {
	net.Conn
	rc  syscall.RawConn
	net string
}

// Stream wraps c when it is a *net.TCPConn or a *net.UnixConn (the kinds
// whose descriptors net owns and keeps non-blocking) and returns any
// other connection (TLS, a pipe, an already wrapped one) unchanged.
func Stream(c net.Conn) net.Conn {
	var sc syscall.Conn
	var network string
	switch t := c.(type) {
	case *net.TCPConn:
		sc, network = t, "tcp"
	case *net.UnixConn:
		sc, network = t, "unix"
	default:
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{Conn: c, rc: rc, net: network}
}

// Unwrap returns the connection Stream wrapped.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// Read reads up to len(b) bytes; io.EOF when the peer has closed its
// side, *net.OpError otherwise.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, e := sysRead(fd, b)
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // the poller waits until there is something to read
			case 0:
				n = r
			}
			errno = e
			return true
		}
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("read", errno)
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of b (write(2) may take it in parts) or returns how
// much it wrote and a *net.OpError.
func (c *Conn) Write(b []byte) (int, error) {
	var done int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for done < len(b) {
			r, e := sysWrite(fd, b[done:])
			switch e {
			case 0:
				done += r
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // the poller waits until there is room
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		return done, c.opError("write", err)
	}
	return done, nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.net, Source: c.Conn.LocalAddr(), Addr: c.Conn.RemoteAddr(), Err: err}
}

// WrapDial returns dial with every connection it makes wrapped by Stream;
// its shape is pgconn.DialFunc's, so a pgx configuration's DialFunc keeps
// its settings (keep-alive, timeouts) and gains raw reads and writes.
func WrapDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Stream(c), nil
	}
}
