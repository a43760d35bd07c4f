//go:build race

package tokens

// raceEnabled relaxes wall-clock assertions: the race detector slows tokenisation several times over.
const raceEnabled = true
