package routing

import (
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

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

// Breaker is one lane's circuit breaker, a sony/gobreaker/v2 TwoStepCircuitBreaker: the engine asks
// Allow before sending and reports the outcome through the returned done func.
//
// It opens after FailureThreshold consecutive lane failures (retry.Class.LaneFailure: server_error,
// overloaded, timeout, network, invalid_response); every other error — rate limits, cancellations,
// bad requests, context length, auth — is excluded, counting neither as success nor failure. A nil
// error is a success. After OpenFor it turns half-open and admits one trial: success closes it, a
// lane failure reopens it for another OpenFor, an excluded outcome frees the slot for another trial.
//
// The clock is time.Now (gobreaker reads it internally; tests run inside testing/synctest). A Breaker
// is safe for concurrent use.
type Breaker struct {
	name    string
	openFor time.Duration
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]
	// openedAt is the time.Now of the last transition to open. It is written from gobreaker's
	// state-change hook (under gobreaker's lock) and read without that lock.
	openedAt atomic.Pointer[time.Time]
}

// NewBreaker returns a closed breaker for the named lane. A FailureThreshold or OpenFor ≤ 0 takes
// DefaultFailureThreshold or DefaultOpenFor.
func NewBreaker(name string, cfg config.Breaker) *Breaker {
	threshold := cfg.FailureThreshold
	if threshold <= 0 {
		threshold = DefaultFailureThreshold
	}
	openFor := cfg.OpenFor.D()
	if openFor <= 0 {
		openFor = DefaultOpenFor
	}
	b := &Breaker{name: name, openFor: openFor}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Interval:    0, // never clear counts while closed: only a success resets the run of failures
		Timeout:     openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(threshold)
		},
		IsExcluded: func(err error) bool {
			return err != nil && !retry.Classify(err).LaneFailure()
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				t := time.Now()
				b.openedAt.Store(&t)
			}
		},
	})
	return b
}

// Name returns the lane name the breaker was created with.
func (b *Breaker) Name() string { return b.name }

// Allow reports whether a request may be sent on the lane now. When ok, the caller must call done
// exactly once with the attempt's error (nil for success); further calls are ignored, and an outcome
// reported after the breaker has since changed state is ignored too. When the breaker is open, or
// half-open with its trial in flight, ok is false and done is nil.
func (b *Breaker) Allow() (done func(err error), ok bool) {
	report, err := b.cb.Allow()
	if err != nil {
		return nil, false
	}
	var once atomic.Bool
	return func(err error) {
		if once.CompareAndSwap(false, true) {
			report(err)
		}
	}, true
}

// State returns the breaker's state now (an open breaker whose OpenFor has elapsed reports half-open).
func (b *Breaker) State() State {
	switch b.cb.State() {
	case gobreaker.StateOpen:
		return StateOpen
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	}
	return StateClosed
}

// OpenUntil returns, for an open breaker, the earliest instant at which Allow will admit a trial, so
// a dispatcher can sleep until then instead of polling. It returns the zero time when the breaker is
// not open: closed, or half-open (where a refusal means the trial is in flight and only its outcome
// changes anything).
func (b *Breaker) OpenUntil() time.Time {
	if b.State() != StateOpen {
		return time.Time{}
	}
	at := b.openedAt.Load()
	if at == nil { // unreachable: the hook runs before State can report open
		return time.Time{}
	}
	// gobreaker half-opens once its expiry is strictly before now; our timestamp is taken at or after
	// its own, so one nanosecond past ours is never early.
	return at.Add(b.openFor + time.Nanosecond)
}
