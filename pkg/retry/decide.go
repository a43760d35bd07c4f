package retry

import "time"

// Step is what the engine does after a failed attempt.
type Step int

// The steps Next chooses among.
const (
	// Fail: no further attempt; the prompt gets an error line.
	Fail Step = iota
	// Again: the same lane, after the returned delay.
	Again
	// OtherLane: drop this lane for the prompt and choose among its other lanes at once.
	OtherLane
	// LargerLane: drop this lane and every lane of the prompt no larger; choose again at once.
	LargerLane
	// Disable: disable the provider for the rest of the run; choose again at once.
	Disable
)

// String returns the step's name, for logs and test failures.
func (s Step) String() string {
	return [...]string{"fail", "again", "other_lane", "larger_lane", "disable"}[s]
}

// healthySteps caps the backoff of a failure on a lane whose breaker is closed at its first doubling.
const healthySteps = 2

// rateLimitSteps caps the backoff of a 429 without Retry-After at its third doubling.
const rateLimitSteps = 3

// State is what a prompt has used so far, counted by Count, for Next.
type State struct {
	LaneFailures int  // retryable failures other than 429 on the failing lane, the last included
	RateLimited  int  // 429s on any of the prompt's lanes, the last included
	OtherLanes   bool // the prompt has lanes other than the failing one left
	// LaneHealthy is set when the failing lane's breaker is closed: its other requests succeed, so
	// this failure is a coincidence and the retry need not back off far.
	LaneHealthy bool
	// Jitter is a uniform draw in [0, 1) for the delay; the caller owns the random source.
	Jitter float64
}

// Count returns s after one more failure of class c: a 429 counts in RateLimited, other retryable
// failures in LaneFailures (the caller keeps LaneFailures per lane).
func (s State) Count(c Class) State {
	switch {
	case c.Type == TypeRateLimit:
		s.RateLimited++
	case c.Retryable:
		s.LaneFailures++
	}
	return s
}

// Next decides what follows a failed attempt of class c, given the prompt's state s (counted with
// c) and the lane's policy p. It is pure: no clock, no randomness but s.Jitter.
//
//   - Failover actions move on at once: not_found to another lane, context_length to a larger one,
//     auth/permission/quota disable the provider.
//   - A 429 is retried on the same lane while RateLimited ≤ p.RateLimitAttempts(), after its
//     Retry-After, or else a short backoff: Delay of at most the rateLimitSteps-th attempt (4 s with
//     the default base of 1 s); the lane's limiter paces and pauses the lane for the limits it knows.
//   - Other retryable failures are retried on the same lane while ShouldRetry allows, after Delay
//     (at most its second step, 2×Base, while the lane is healthy: its breaker is closed);
//     when the lane has used its max_attempts the prompt moves to its other lanes, which get their own.
//   - Anything else fails.
func Next(s State, c Class, p Policy) (Step, time.Duration) {
	switch c.Action {
	case ActionFailover:
		return OtherLane, 0
	case ActionFailoverLargerContext:
		return LargerLane, 0
	case ActionDisableProvider:
		return Disable, 0
	}
	if c.Type == TypeRateLimit {
		if s.RateLimited > p.RateLimitAttempts() {
			return Fail, 0
		}
		// The lane's limiter paces and pauses the lane for the limits the headers explain; the prompt
		// itself only needs a short pause, so a run of random 429s does not grow it past a few seconds.
		return Again, p.Delay(min(s.RateLimited, rateLimitSteps), c, s.Jitter)
	}
	switch {
	case !c.Retryable:
		return Fail, 0
	case p.ShouldRetry(s.LaneFailures, c):
		n := s.LaneFailures
		if s.LaneHealthy {
			n = min(n, healthySteps)
		}
		return Again, p.Delay(n, c, s.Jitter)
	case s.OtherLanes:
		return OtherLane, 0
	}
	return Fail, 0
}
