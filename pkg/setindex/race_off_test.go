//go:build !race

package setindex

const raceEnabled = false
