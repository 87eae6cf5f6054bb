package rawsock

import (
	"os"
	"syscall"
	"unsafe"
)

// soMeminfo is SO_MEMINFO (Linux 3.9, include/uapi/asm-generic/socket.h);
// the kernel fills an array of SK_MEMINFO_VARS uint32 of which the first
// two are SK_MEMINFO_RMEM_ALLOC (bytes of the receive queue) and
// SK_MEMINFO_RCVBUF (the receive buffer's limit, SO_RCVBUF as the kernel
// doubled and capped it).
const (
	soMeminfo       = 55
	skMeminfoVars   = 9
	skMeminfoRmem   = 0
	skMeminfoRcvbuf = 1
)

// Backlog reports the bytes the kernel holds in c's receive queue
// (datagrams not read yet, counted with their buffers' overhead, as the
// kernel counts them against the limit) and the limit beyond which it
// drops arriving datagrams (Udp RcvbufErrors in /proc/net/snmp). One
// getsockopt(SO_MEMINFO) system call; safe for use beside a reader.
func (c *PacketConn) Backlog() (queued, limit int, err error) {
	var mem [skMeminfoVars]uint32
	var errno syscall.Errno
	cerr := c.rc.Control(func(fd uintptr) {
		n := uint32(unsafe.Sizeof(mem))
		_, _, errno = syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_SOCKET, soMeminfo,
			uintptr(unsafe.Pointer(&mem)), uintptr(unsafe.Pointer(&n)), 0)
	})
	if cerr != nil {
		return 0, 0, cerr
	}
	if errno != 0 {
		return 0, 0, os.NewSyscallError("getsockopt SO_MEMINFO", errno)
	}
	return int(mem[skMeminfoRmem]), int(mem[skMeminfoRcvbuf]), nil
}
