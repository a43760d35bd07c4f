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
	DefaultFailureRate      = 0.5
	DefaultWindow           = 50
	DefaultProbes           = 2
	// minOpen is the shortest open period.
	minOpen = 250 * time.Millisecond
)

// Breaker is one lane's circuit breaker (resilience4j's model): the engine asks Allow before sending
// and reports the outcome through the returned done func.
//
// It counts lane failures (retry.Class.LaneFailure: server_error, overloaded, timeout, network,
// invalid_response) and successes over the lane's last Window calls; every other error — rate
// limits, cancellations, bad requests, context length, auth — is excluded, counting neither way. It
// opens when at least FailureThreshold of those calls failed and they are all of them (a dead lane) or, once half the window is filled, at least FailureRate
// of them (so a lane answering 75% of requests stays closed however its failures bunch together),
// or when nothing has succeeded for OpenFor since its failures began. Requests in flight sent no
// later than a failing one count as calls: failures come back faster than answers. Open, it refuses everything; the first open period is OpenFor/16 (at least 250 ms)
// and each reopening without a success in between doubles it, up to OpenFor. Then it turns half-open
// and admits Probes requests at once: a success closes it (and clears the counts), a failure reopens
// it. ProbeSoon shortens the open period of a lane that is the only one able to serve its prompts.
// Outcomes of requests admitted before the last change of state are ignored.
//
// It reads time from the clock it is given, like the rest of the engine: this is why it is written
// here rather than taken from sony/gobreaker, which reads time.Now itself. A Breaker is safe for
// concurrent use.
type Breaker struct {
	name      string
	maxOpen   time.Duration
	threshold int
	rate      float64
	window    int
	probes    int
	now       func() time.Time

	mu         sync.Mutex
	state      State // closed, open or half-open as last stored; open turns half-open lazily
	generation uint64
	recent     []bool    // the last calls, true for a lane failure (a ring once full)
	next       int       // where the next call goes once the ring is full
	failures   int       // failures among recent
	openedAt   time.Time // the last transition to open
	openFor    time.Duration
	inFlight   int // permits of the current generation not yet reported
	// pending holds when each of those permits was given, to tell which in-flight requests were sent
	// no later than a failing one (their answers are as due as its failure was).
	pending map[uint64]time.Time
	permits uint64
	// The current run of failures: opens since the last success, and the first lane failure after it
	// (zero when the last outcome was a success). A dispatcher uses them to call a lane dead.
	opens        int
	failingSince time.Time
}

// NewBreaker returns a closed breaker for the named lane, reading time from now (time.Now when nil).
// Zero or negative config fields take the Default* values.
func NewBreaker(name string, cfg config.Breaker, now func() time.Time) *Breaker {
	b := &Breaker{name: name, maxOpen: cfg.OpenFor.D(), threshold: cfg.FailureThreshold, rate: cfg.FailureRate,
		window: cfg.Window, probes: cfg.Probes, now: now}
	if b.threshold <= 0 {
		b.threshold = DefaultFailureThreshold
	}
	if b.maxOpen <= 0 {
		b.maxOpen = DefaultOpenFor
	}
	if !(b.rate > 0 && b.rate <= 1) {
		b.rate = DefaultFailureRate
	}
	if b.window <= 0 {
		b.window = DefaultWindow
	}
	b.window = max(b.window, b.threshold)
	if b.probes <= 0 {
		b.probes = DefaultProbes
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// MaxOpen returns the longest open period (the config's open_for).
func (b *Breaker) MaxOpen() time.Duration { return b.maxOpen }

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
		if b.inFlight >= b.probes {
			return nil, false
		}
	}
	b.inFlight++
	gen := b.generation
	b.permits++
	id := b.permits
	if b.pending == nil {
		b.pending = map[uint64]time.Time{}
	}
	b.pending[id] = b.now()
	var once atomic.Bool
	return func(err error) {
		if once.CompareAndSwap(false, true) {
			b.report(gen, id, err)
		}
	}, true
}

// report records the outcome of a request admitted in generation gen.
func (b *Breaker) report(gen, id uint64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	state := b.currentLocked(now)
	if gen != b.generation {
		return
	}
	b.inFlight--
	sent := b.pending[id]
	delete(b.pending, id)
	switch {
	case err != nil && !retry.Classify(err).LaneFailure():
		// excluded: neither success nor failure; a half-open slot is free again
	case err == nil:
		b.opens, b.failingSince = 0, time.Time{}
		if state == StateHalfOpen {
			b.setLocked(StateClosed, now)
		}
		b.recordLocked(false)
	case state == StateHalfOpen:
		b.failedLocked(now)
		b.setLocked(StateOpen, now)
	default:
		b.failedLocked(now)
		b.recordLocked(true)
		// Requests in flight that were sent no later than this one count as calls too: failures (a
		// 500, a reset) come back faster than answers, so the first outcomes of a burst would
		// overstate the failure rate.
		calls := len(b.recent)
		for _, at := range b.pending {
			if !at.After(sent) {
				calls++
			}
		}
		// The rate once there are enough calls to measure it (half the window); before that only when
		// every call failed, as on a dead lane.
		byRate := b.failures >= b.threshold && float64(b.failures) >= b.rate*float64(calls) &&
			(len(b.recent) >= b.window/2 || b.failures == calls)
		// Nothing succeeded since the failures began, for as long as the longest open period.
		bySpan := b.failures >= 2 && now.Sub(b.failingSince) >= b.maxOpen
		if byRate || bySpan {
			b.setLocked(StateOpen, now)
		}
	}
}

// recordLocked adds one call to the recent ones.
func (b *Breaker) recordLocked(failed bool) {
	if len(b.recent) < b.window {
		b.recent = append(b.recent, failed)
	} else {
		if b.recent[b.next] {
			b.failures--
		}
		b.recent[b.next] = failed
		b.next = (b.next + 1) % b.window
	}
	if failed {
		b.failures++
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

// setLocked moves to state s and starts a new generation. Opening sets the open period (doubling per
// opening since the last success); closing clears the recent calls.
func (b *Breaker) setLocked(s State, now time.Time) {
	b.state = s
	b.generation++
	b.inFlight = 0
	clear(b.pending)
	switch s {
	case StateOpen:
		b.openedAt = now
		first := min(max(b.maxOpen/16, minOpen), b.maxOpen)
		b.openFor = min(first<<min(b.opens, 16), b.maxOpen)
		b.opens++
	case StateClosed:
		b.recent, b.next, b.failures = b.recent[:0], 0, 0
	}
}

// ProbeSoon shortens the current open period so that a probe may go within d: for a lane that is
// the only one able to serve its prompts, whose waiting costs the whole batch. It does nothing when
// the breaker is not open or would half-open sooner anyway.
func (b *Breaker) ProbeSoon(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.currentLocked(now) != StateOpen {
		return
	}
	if until := now.Add(d); until.Before(b.openedAt.Add(b.openFor)) {
		b.openFor = until.Sub(b.openedAt)
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
