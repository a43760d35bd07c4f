package routing

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/retry"
)

// State is a circuit breaker's state.
type State int

// The breaker states.
const (
	// StateClosed: requests flow; consecutive lane failures are counted.
	StateClosed State = iota
	// StateHalfOpen: the open period is over; one trial request is admitted at a time.
	StateHalfOpen
	// StateOpen: requests are refused until OpenUntil.
	StateOpen
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	}
	return "unknown"
}

// Default breaker policy, used for zero or negative config fields.
const (
	DefaultFailureThreshold = 5
	DefaultOpenFor          = 30 * time.Second
)

// Breaker is one lane's circuit breaker: the engine asks Allow before sending and reports the
// outcome through the returned done func.
//
// It opens after FailureThreshold consecutive lane failures (retry.Class.LaneFailure: server_error,
// overloaded, timeout, network, invalid_response); every other error — rate limits, cancellations,
// bad requests, context length, auth — is excluded, counting neither as success nor failure. A nil
// error is a success. Once OpenFor has passed it turns half-open and admits one trial: success closes
// it, a lane failure reopens it for another OpenFor, an excluded outcome frees the slot for another
// trial. Outcomes of requests admitted before the last change of state are ignored.
//
// It reads time from the clock it is given, like the rest of the engine: this is why it is written
// here rather than taken from sony/gobreaker, which reads time.Now itself. A Breaker is safe for
// concurrent use.
type Breaker struct {
	name      string
	openFor   time.Duration
	threshold int
	now       func() time.Time

	mu         sync.Mutex
	state      State // closed, open or half-open as last stored; open turns half-open lazily
	generation uint64
	failures   int       // consecutive lane failures while closed
	openedAt   time.Time // the last transition to open
	inFlight   int       // permits of the current generation not yet reported
	// The current run of failures: opens since the last success, and the first lane failure after it
	// (zero when the last outcome was a success). A dispatcher uses them to call a lane dead.
	opens        int
	failingSince time.Time
}

// NewBreaker returns a closed breaker for the named lane, reading time from now (time.Now when nil).
// A FailureThreshold or OpenFor ≤ 0 takes DefaultFailureThreshold or DefaultOpenFor.
func NewBreaker(name string, cfg config.Breaker, now func() time.Time) *Breaker {
	threshold := cfg.FailureThreshold
	if threshold <= 0 {
		threshold = DefaultFailureThreshold
	}
	openFor := cfg.OpenFor.D()
	if openFor <= 0 {
		openFor = DefaultOpenFor
	}
	if now == nil {
		now = time.Now
	}
	return &Breaker{name: name, openFor: openFor, threshold: threshold, now: now}
}

// Name returns the lane name the breaker was created with.
func (b *Breaker) Name() string { return b.name }

// Allow reports whether a request may be sent on the lane now. When ok, the caller must call done
// exactly once with the attempt's error (nil for success); further calls are ignored, and an outcome
// reported after the breaker has since changed state is ignored too. When the breaker is open, or
// half-open with its trial in flight, ok is false and done is nil.
func (b *Breaker) Allow() (done func(err error), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.currentLocked(b.now()) {
	case StateOpen:
		return nil, false
	case StateHalfOpen:
		if b.inFlight >= 1 {
			return nil, false
		}
	}
	b.inFlight++
	gen := b.generation
	var once atomic.Bool
	return func(err error) {
		if once.CompareAndSwap(false, true) {
			b.report(gen, err)
		}
	}, true
}

// report records the outcome of a request admitted in generation gen.
func (b *Breaker) report(gen uint64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	state := b.currentLocked(now)
	if gen != b.generation {
		return
	}
	b.inFlight--
	switch {
	case err != nil && !retry.Classify(err).LaneFailure():
		// excluded: neither success nor failure; a half-open slot is free again
	case err == nil:
		b.failures, b.opens, b.failingSince = 0, 0, time.Time{}
		if state == StateHalfOpen {
			b.setLocked(StateClosed, now)
		}
	case state == StateHalfOpen:
		b.failedLocked(now)
		b.setLocked(StateOpen, now)
	default:
		b.failedLocked(now)
		if b.failures++; b.failures >= b.threshold {
			b.setLocked(StateOpen, now)
		}
	}
}

// failedLocked notes a lane failure in the current run of failures.
func (b *Breaker) failedLocked(now time.Time) {
	if b.failingSince.IsZero() {
		b.failingSince = now
	}
}

// Streak returns the current run of failures: how many times the breaker has opened since the last
// success, and when the first lane failure after that success came (zero when the last outcome
// was a success or no failure came yet).
func (b *Breaker) Streak() (opens int, failingSince time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens, b.failingSince
}

// currentLocked returns the state at now, turning an open breaker whose period is over half-open.
func (b *Breaker) currentLocked(now time.Time) State {
	if b.state == StateOpen && now.After(b.openedAt.Add(b.openFor)) {
		b.setLocked(StateHalfOpen, now)
	}
	return b.state
}

// setLocked moves to state s and starts a new generation.
func (b *Breaker) setLocked(s State, now time.Time) {
	b.state = s
	b.generation++
	b.failures, b.inFlight = 0, 0
	if s == StateOpen {
		b.openedAt = now
		b.opens++
	}
}

// State returns the breaker's state now (an open breaker whose OpenFor has elapsed reports half-open).
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.currentLocked(b.now())
}

// InFlight returns the permits Allow gave in the current state that have not been reported yet.
func (b *Breaker) InFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.currentLocked(b.now())
	return b.inFlight
}

// OpenUntil returns, for an open breaker, the earliest instant at which Allow will admit a trial, so
// a dispatcher can sleep until then instead of polling. It returns the zero time when the breaker is
// not open: closed, or half-open (where a refusal means the trial is in flight and only its outcome
// changes anything).
func (b *Breaker) OpenUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.currentLocked(b.now()) != StateOpen {
		return time.Time{}
	}
	// The breaker half-opens once strictly past openedAt+openFor.
	return b.openedAt.Add(b.openFor + time.Nanosecond)
}
