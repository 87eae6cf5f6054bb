//go:build race

package rawsock

// raceEnabled: the race detector's sync.Pool drops a share of what is put
// back on purpose, so allocation counts are not asserted under it.
const raceEnabled = true
