//go:build race

package rawsock

import "syscall"

// Under the race detector a stream's read and write go through
// syscall.Read and syscall.Write, which tell the detector what net's
// sockets tell it: a write to any descriptor happens before a read of
// any, and the buffers are written and read (syscall_unix.go's ioSync).
// Without that, data handed between goroutines through a connection
// would be reported as a race. Race builds are for tests, where the
// monitor thread's wake-ups do not matter.

func sysRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), b)
	return max(n, 0), errno(err)
}

func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), b)
	return max(n, 0), errno(err)
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}
