//go:build race

package testenv

// RaceEnabled reports whether the race detector is on; memory and timing
// measurements mean little under it.
const RaceEnabled = true
