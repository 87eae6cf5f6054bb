package pgtest

import (
	"os"
	"strconv"
	"strings"
)

// CPUSeconds returns the CPU time (user + system) used so far by this
// process (self) and by the local PostgreSQL server's processes (postgres),
// read from /proc, for benchmarks that report CPU per operation. With db
// set, postgres counts only the back ends connected to database db (their
// process title names it); with db empty, every PostgreSQL process,
// WAL writer and checkpointer included. Processes that exit between two
// calls are not counted. 0, 0 where /proc is not available.
func CPUSeconds(db string) (self, postgres float64) {
	self, ok := procCPUSeconds("self")
	if !ok {
		return 0, 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		if c := e.Name()[0]; c < '0' || c > '9' {
			continue
		}
		title, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(title), "postgres") ||
			(db != "" && !strings.Contains(string(title), " "+db+" ")) {
			continue
		}
		if sec, ok := procCPUSeconds(e.Name()); ok {
			postgres += sec
		}
	}
	return self, postgres
}

// procCPUSeconds reads utime + stime of /proc/PID/stat in seconds.
func procCPUSeconds(pid string) (float64, bool) {
	const hz = 100 // USER_HZ on Linux
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	j := strings.LastIndexByte(s, ')')
	if j < 0 {
		return 0, false
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / hz, true
}
