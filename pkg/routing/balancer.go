// Package routing decides where a request goes among the lanes allowed to serve it: the load
// balancer (Pick), per-lane circuit breakers and per-lane health scores.
package routing

import "time"

// Policy is how Pick chooses among usable lanes.
type Policy int

const (
	// Cheapest takes the first usable lane in the caller's order (cheapest first), preferring healthy
	// lanes: other lanes get work only when the cheaper ones are down or out of quota.
	Cheapest Policy = iota
	// Soonest takes the usable lane that can start the request first, by rate-limit delay and then by
	// load, preferring healthy lanes: capable lanes share the work in proportion to their capacity.
	Soonest
)

// Candidate is one lane that may serve a request, as seen at the moment of choosing.
type Candidate struct {
	Usable  bool          // enabled, breaker admitting, daily budget left
	Healthy bool          // health score above threshold
	Delay   time.Duration // how long its rate limiter would make the request wait now
	Load    float64       // in flight divided by the lane's concurrency bound (0 when unbounded)
}

// Pick returns the index of the lane to use, or -1 when no candidate is usable. Ties go to the
// earlier (cheaper) candidate. It is a pure function of its arguments.
func Pick(cands []Candidate, p Policy) int {
	best := -1
	for i, c := range cands {
		if !c.Usable {
			continue
		}
		if best < 0 || better(c, cands[best], p) {
			best = i
		}
	}
	return best
}

// better reports whether a beats the incumbent b under p; equal candidates never beat the incumbent.
func better(a, b Candidate, p Policy) bool {
	if a.Healthy != b.Healthy {
		return a.Healthy
	}
	if p == Cheapest {
		return false
	}
	if a.Delay != b.Delay {
		return a.Delay < b.Delay
	}
	return a.Load < b.Load
}
