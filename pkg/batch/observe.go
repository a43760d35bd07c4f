package batch

import (
	"time"

	"github.com/llmbatch/llmbatch/pkg/routing"
)

// Observer receives what the engine does, for live metrics (pkg/metrics implements it). Its
// methods are called from many goroutines at once and must return quickly.
type Observer interface {
	// Attempt reports one request sent (a cached answer sends none).
	Attempt(AttemptEvent)
	// Waited reports how long a request waited for its lane's admission: rate limit, budget,
	// concurrency slots and breaker.
	Waited(provider, model string, d time.Duration)
	// Lanes registers fn, which returns every lane's live state when called (at scrape time, from
	// another goroutine; it is safe for that).
	Lanes(fn func() []LaneState)
}

// AttemptEvent is one request's outcome.
type AttemptEvent struct {
	Provider, Model string
	Class           string // the classifier's error type; "" = ok
	Latency         time.Duration
	InputTokens     int // of an ok answer
	OutputTokens    int
	CostUSD         float64
}

// LaneState is one lane's live state.
type LaneState struct {
	Provider, Model string
	InFlight        int
	Breaker         routing.State
	RPM, TPM        int // the limits in force, configured or learned (0 = unknown)
}

// laneStates reports the targets' live state for an Observer.
func (e *engine) laneStates() []LaneState {
	out := make([]LaneState, len(e.targets))
	for i, t := range e.targets {
		lim := t.limits.Snapshot().Limits
		out[i] = LaneState{Provider: t.prov.name, Model: t.sel.Name, InFlight: int(t.inFlight.Load()),
			Breaker: t.breaker.State(), RPM: lim.RPM, TPM: lim.TPM}
	}
	return out
}
