// Package rawsock reads and writes sockets with raw system calls
// (recvfrom(2)/sendto(2) for UDP, read(2)/write(2) for streams, through
// syscall.RawSyscall6) instead of the net package's, which enter the Go
// scheduler's system-call state around each call.
//
// Why: Go's sockets are non-blocking (the runtime's poller waits for
// them), so none of these calls blocks; but entering the system-call
// state wakes the runtime's monitor thread (sysmon) whenever every P had
// been idle, and that thread then polls every 20 µs before it sleeps
// again. At the rates a CSCF runs, nearly every datagram found the
// process idle: the monitor thread used 13–19 % of the P-CSCF's CPU in
// registration and call runs (its /proc/PID/task/TID/stat), CPU that no
// profile shows because the thread runs without a P
// (docs/performance.md, "Thirteenth session"; ADR 0004). A raw call keeps
// its P for the few microseconds it takes and wakes nobody. When there
// is nothing to read (EAGAIN) or no room to write, syscall.RawConn waits
// on the poller exactly as net does, so deadlines and Close behave as
// net's: a closed socket's error is net.ErrClosed, a deadline's
// os.ErrDeadlineExceeded.
//
// Only non-blocking descriptors owned by the net package may be wrapped:
// a raw call that blocked would hold its P. Race-detector builds read and
// write streams through syscall.Read and syscall.Write instead, so that
// the detector orders goroutines through a connection as it does through
// net's (race.go).
package rawsock
