package imsue

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// reuseAddr sets SO_REUSEADDR: the UE's TCP connections all leave from
// port-c (to the P-CSCF's unprotected port, then to its protected one)
// and a new one may follow a connection still in TIME_WAIT.
var reuseAddr = sipproxy.ReuseAddr

// connListener is a net.Listener whose Accept returns the TCP
// connections the UE dialled itself (from port-c), so that sipgo's TCP
// transport reads them and finds them by remote address in its pool,
// and never dials on its own.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	if l != nil {
		l.once.Do(func() { close(l.done) })
	}
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// hand gives c to sipgo; false when the listener is closed.
func (l *connListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// dialTCP opens a TCP connection from ip:port-c to raddr and hands it to
// sipgo, unless sipgo already holds one to raddr.
func (u *UE) dialTCP(ctx context.Context, raddr *net.TCPAddr) error {
	// One dial at a time: two connections from port-c to the same
	// address are the same 4-tuple (EADDRNOTAVAIL).
	u.dialMu.Lock()
	defer u.dialMu.Unlock()
	tp := u.ua.TransportLayer()
	if c, _ := tp.GetConnection("tcp", raddr.String()); c != nil {
		return nil
	}
	d := net.Dialer{LocalAddr: u.tcpAddr(u.portC), Control: reuseAddr, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", raddr.String())
	if err != nil {
		return err
	}
	if !u.dialed.hand(c) {
		_ = c.Close()
		return net.ErrClosed
	}
	// sipgo adds the connection to its pool in the accept loop.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if cc, _ := tp.GetConnection("tcp", raddr.String()); cc != nil {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// routeSource returns the local address the kernel uses towards dst.
func routeSource(dst *net.UDPAddr) (net.IP, error) {
	c, err := net.DialUDP("udp", nil, dst)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP, nil
}

var (
	kernelOnce sync.Once
	kernel     *ipsec.Kernel
	kernelErr  error
	spis       *ipsec.SPIAllocator
)

// sharedKernel is the XFRM backend (UE side) of the current network
// namespace, probed once and shared by the process's UEs.
func sharedKernel() (ipsec.Backend, error) {
	kernelOnce.Do(func() {
		var k *ipsec.Kernel
		if k, kernelErr = ipsec.NewKernel(nil); kernelErr == nil {
			k.Side = ipsec.SideUE
			if kernelErr = k.Probe(); kernelErr == nil {
				kernel = k
			}
		}
	})
	if kernelErr != nil {
		return nil, kernelErr
	}
	return kernel, nil
}

func init() {
	// The UEs of one process draw their SPIs from one range so that two
	// of them never pick the same inbound SPI.
	spis, _ = ipsec.NewSPIAllocator(0x10000, 0x0fffffff)
}

// EnterNetns re-executes the running program inside the named network
// namespace (/run/netns/NAME, as `ip netns add` makes) with args, so that
// every socket and the XFRM handle of its UEs are there: a UE with IPsec
// needs a namespace other than the P-CSCF's. It returns only on error.
func EnterNetns(name string, args []string) error {
	runtime.LockOSThread()
	h, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("%w: network namespace %q: %v (create it with ip netns add, see docs/softphones.md)", ErrConfig, name, err)
	}
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("%w: enter network namespace %q: %v (needs CAP_SYS_ADMIN)", ErrConfig, name, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// The calling thread is in the namespace; execve keeps it.
	return syscall.Exec(exe, args, os.Environ())
}
