package rawsock

import (
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// PacketConn is a *net.UDPConn whose ReadFrom and WriteTo use raw
// system calls. Every other method is the UDPConn's.
type PacketConn struct {
	*net.UDPConn
	rc  syscall.RawConn
	six bool // an AF_INET6 socket: IPv4 peers are written v4-mapped

	rmu sync.Mutex // one reader at a time owns rd
	rd  rawRead
}

// rawRead is the state of one recvfrom, kept in the connection so that a
// read allocates nothing but the source address.
type rawRead struct {
	b     []byte
	n     int
	sa    syscall.RawSockaddrAny
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (r *rawRead) call(fd uintptr) bool {
	for {
		salen := uint32(syscall.SizeofSockaddrAny)
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(r.b))), uintptr(len(r.b)), 0,
			uintptr(unsafe.Pointer(&r.sa)), uintptr(unsafe.Pointer(&salen)))
		switch e {
		case 0:
			r.n, r.errno = int(n), 0
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the poller waits until the socket is readable
		default:
			r.n, r.errno = 0, e
			return true
		}
	}
}

// UDP wraps c. It fails only when the socket's descriptor
// or family cannot be read.
func UDP(c *net.UDPConn) (*PacketConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var family int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var sa syscall.Sockaddr
		if sa, serr = syscall.Getsockname(int(fd)); serr == nil {
			_, v6 := sa.(*syscall.SockaddrInet6)
			family = syscall.AF_INET
			if v6 {
				family = syscall.AF_INET6
			}
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, os.NewSyscallError("getsockname", serr)
	}
	p := &PacketConn{UDPConn: c, rc: rc, six: family == syscall.AF_INET6}
	p.rd.fn = p.rd.call
	return p, nil
}

// ReadFrom reads one datagram into b (truncated to len(b), as recvfrom
// does) and returns its length and source, a *net.UDPAddr. Errors are
// *net.OpError; a closed socket gives one that is net.ErrClosed.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(b) == 0 {
		return c.UDPConn.ReadFrom(b)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		c.rd.b = b
		err := c.rc.Read(c.rd.fn)
		c.rd.b = nil
		if err == nil && c.rd.errno != 0 {
			err = os.NewSyscallError("recvfrom", c.rd.errno)
		}
		if err != nil {
			return 0, nil, c.opError("read", nil, err)
		}
		if addr, ok := sockaddrToUDP(&c.rd.sa); ok {
			return c.rd.n, addr, nil
		}
		// A source of another family, which an IPv4 or IPv6 UDP socket
		// never reports: the datagram is dropped, not returned as an
		// error, which would end the caller's read loop (sipgo's does).
	}
}

// WriteTo sends b as one datagram to addr, a *net.UDPAddr (another kind
// of address goes through the UDPConn's own WriteTo).
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return c.UDPConn.WriteTo(b, addr)
	}
	w := sendtos.Get().(*rawSendto)
	defer sendtos.Put(w)
	salen, err := udpToSockaddr(ua, c.six, &w.sa)
	if err != nil {
		return 0, c.opError("write", addr, err)
	}
	w.b, w.salen = b, salen
	werr := c.rc.Write(w.fn)
	w.b = nil
	if werr == nil && w.errno != 0 {
		werr = os.NewSyscallError("sendto", w.errno)
	}
	if werr != nil {
		return 0, c.opError("write", addr, werr)
	}
	return w.n, nil
}

// rawSendto is the state of one sendto; writers take one from sendtos,
// so that a write allocates nothing.
type rawSendto struct {
	b     []byte
	sa    syscall.RawSockaddrAny
	salen int
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

var sendtos = sync.Pool{New: func() any {
	w := &rawSendto{}
	w.fn = w.call
	return w
}}

func (w *rawSendto) call(fd uintptr) bool {
	var p uintptr
	if len(w.b) > 0 {
		p = uintptr(unsafe.Pointer(unsafe.SliceData(w.b)))
	}
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, p, uintptr(len(w.b)), 0,
			uintptr(unsafe.Pointer(&w.sa)), uintptr(w.salen))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the poller waits until the socket is writable
		}
		w.n, w.errno = int(n), e
		return true
	}
}

func (c *PacketConn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.UDPConn.LocalAddr(), Addr: addr, Err: err}
}

// sockaddrToUDP converts a recvfrom source address: IPv4 as a 4-byte IP,
// IPv6 (v4-mapped included) as 16 bytes with its zone, as net does.
func sockaddrToUDP(sa *syscall.RawSockaddrAny) (*net.UDPAddr, bool) {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		ip := make(net.IP, net.IPv4len)
		copy(ip, p.Addr[:])
		return &net.UDPAddr{IP: ip, Port: ntohs(p.Port)}, true
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		ip := make(net.IP, net.IPv6len)
		copy(ip, p.Addr[:])
		return &net.UDPAddr{IP: ip, Port: ntohs(p.Port), Zone: zoneName(p.Scope_id)}, true
	}
	return nil, false
}

// udpToSockaddr fills sa with ua for a socket of the given family and
// returns its length.
func udpToSockaddr(ua *net.UDPAddr, six bool, sa *syscall.RawSockaddrAny) (int, error) {
	*sa = syscall.RawSockaddrAny{}
	if ua.Port < 0 || ua.Port > 0xffff {
		return 0, syscall.EINVAL
	}
	if ip4 := ua.IP.To4(); ip4 != nil && !six {
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		p.Family = syscall.AF_INET
		p.Port = htons(ua.Port)
		copy(p.Addr[:], ip4)
		return syscall.SizeofSockaddrInet4, nil
	}
	if !six {
		return 0, syscall.EAFNOSUPPORT // an IPv6 peer on an IPv4 socket
	}
	ip := ua.IP.To16()
	if ip == nil {
		if len(ua.IP) != 0 {
			return 0, syscall.EINVAL
		}
		ip = net.IPv6unspecified
	}
	p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
	p.Family = syscall.AF_INET6
	p.Port = htons(ua.Port)
	copy(p.Addr[:], ip)
	if ua.Zone != "" {
		p.Scope_id = zoneIndex(ua.Zone)
	}
	return syscall.SizeofSockaddrInet6, nil
}

// ntohs and htons convert a port between host order and the network
// order a sockaddr holds (the field is read and written as memory).
func ntohs(v uint16) int {
	b := (*[2]byte)(unsafe.Pointer(&v))
	return int(b[0])<<8 | int(b[1])
}

func htons(port int) uint16 {
	var v uint16
	b := (*[2]byte)(unsafe.Pointer(&v))
	b[0], b[1] = byte(port>>8), byte(port)
	return v
}

// zoneName and zoneIndex map an IPv6 scope to the interface name net
// uses as the zone, the number when no interface has it. Names are kept
// for a minute, as net's own zone cache does, so that datagrams from a
// link-local peer do not list the interfaces each.
func zoneName(id uint32) string {
	if id == 0 {
		return ""
	}
	zones.mu.Lock()
	defer zones.mu.Unlock()
	if time.Since(zones.at) > time.Minute {
		zones.names, zones.at = map[uint32]string{}, time.Now()
	}
	if name, ok := zones.names[id]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(id), 10)
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		name = ifi.Name
	}
	zones.names[id] = name
	return name
}

var zones struct {
	mu    sync.Mutex
	at    time.Time
	names map[uint32]string
}

func zoneIndex(zone string) uint32 {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}
