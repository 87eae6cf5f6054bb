//go:build race

package setindex

// raceEnabled: the race detector adds to every allocation, so heap sizes
// are not asserted under it.
const raceEnabled = true
