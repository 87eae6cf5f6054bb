//go:build !race

package sipproxy

const raceEnabled = false
