package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

const (
	// providerWindow is what the limits' figures are stated per: RPM and TPM are per minute.
	providerWindow = time.Minute
	// logSpan is the span of the log over a full 60 s window: the window plus its guard.
	logSpan = providerWindow + time.Second
	// logQuantum is how close admissions must be to share an entry of a 60 s window's log.
	logQuantum = 60 * time.Millisecond
	// defaultQuantum is the sub-window assumed until the provider's headers show how it enforces
	// (OpenAI documents per-minute limits enforced per second): no burst above one second's share.
	defaultQuantum = time.Second
	// maxGuard caps the guard added to a window for the jitter between our clock and the provider's.
	maxGuard = time.Second
	// day is the length of a daily-limit period when the provider does not say when it resets.
	day = 24 * time.Hour

	// Backoff after a 429 its headers explain but that carries no Retry-After.
	minBackoff = time.Second
	maxBackoff = 30 * time.Second

	// Probes is how many requests a lane whose limits are unknown sends before its first answer.
	Probes = 4

	// Adaptation to 429s nothing explains (see the package doc).
	recentAnswers = 40   // answers the rejection share is measured over
	limitShare    = 0.6  // a share of unexplained 429s above this says a limit is being hit
	aiStep        = 0.02 // requests per minute added per request answered without a 429
	overshootStep = 0.97 // after creeping above the accepted level, decrease to this share of it
	recovery      = 3.0  // below the accepted level, close recovery/rpm of the gap per answer (95% a minute)
)

// guardFor is the guard added to a window of length d: 1/60 of it (1 s for a minute), so pacing
// alone stays under the limit when requests reach the provider with some jitter.
func guardFor(d time.Duration) time.Duration { return min(d/60, maxGuard) }

// mergeFor is how close admissions must be to share an entry of a log of span d: about a
// thousandth of it, so an entry leaving late costs at most 0.1% of the window.
func mergeFor(d time.Duration) time.Duration { return max(d/1000, time.Microsecond) }

// shareOf is a per-minute figure's share of a window of length d, at least 1 (0 = unknown).
func shareOf(perMinute int, d time.Duration) int {
	if perMinute <= 0 {
		return 0
	}
	return max(1, int(int64(perMinute)*int64(d)/int64(providerWindow)))
}

// Never is what Delay returns when the lane cannot admit the request at all: its daily budget is
// spent or the request is larger than a limit.
const Never = time.Duration(math.MaxInt64)

// ErrDailyExhausted is wrapped by the error Wait returns when the lane's requests- or tokens-per-day
// budget cannot admit the request before the day rolls over.
var ErrDailyExhausted = errors.New("daily limit exhausted")

// ErrTooLarge is wrapped by the error Wait returns when one request has more tokens than the lane's
// tokens-per-minute or tokens-per-day limit: the provider would reject it however long we waited.
var ErrTooLarge = errors.New("request larger than the token limit")

// Limits are a lane's rate limits; a zero field means unknown (no limit is applied until learned).
//
// Window and Quantum say how the provider enforces the per-minute figures: over a sliding window of
// length Window admitting its share RPM·Window/60 at once (a finite job may burst that much), and,
// when Quantum is set, also over sub-windows of length Quantum admitting RPM·Quantum/60 each (no
// burst above that). Zero Window and Quantum mean unknown: learned from the provider's reset times
// and from 429s that arrive while budget remains, one second's share at a time until then.
type Limits struct {
	RPM int // requests per minute
	TPM int // tokens per minute (prompt estimate + max_tokens at admission)
	RPD int // requests per day
	TPD int // tokens per day

	Window  time.Duration // the enforcement window; 0 = unknown (60 s)
	Quantum time.Duration // the enforcement sub-window; 0 = none, or unknown when Window is 0 too
}

// Ceiling returns the highest sustainable request rate, in requests per second, for requests of
// tokensPerRequest tokens: min(RPM, TPM/tokensPerRequest)/60. It returns 0 when neither RPM nor TPM
// is known (no ceiling).
func (l Limits) Ceiling(tokensPerRequest float64) float64 {
	c := math.Inf(1)
	if l.RPM > 0 {
		c = float64(l.RPM)
	}
	if l.TPM > 0 && tokensPerRequest > 0 {
		c = math.Min(c, float64(l.TPM)/tokensPerRequest)
	}
	if math.IsInf(c, 1) {
		return 0
	}
	return c / 60
}

// Source says where a lane's current value of one limit comes from.
type Source int

// The sources of a limit.
const (
	SourceUnknown  Source = iota // not known: not enforced
	SourceConfig                 // providers.yaml
	SourceHeaders                // advertised by the provider's rate-limit headers
	SourceAdaptive               // adapted by AIMD after 429s without limit headers
	SourceLearned                // enforcement learned from reset times or 429s with budget left
)

var sourceNames = [...]string{"unknown", "config", "headers", "adaptive", "learned"}

// String returns the source's lower-case name.
func (s Source) String() string {
	if s >= 0 && int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// MarshalText writes the source's name, for JSON output.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Sources says where each of a lane's limits comes from.
type Sources struct {
	RPM, TPM, RPD, TPD Source
	Window, Quantum    Source
}

// State is a snapshot of a lane for selection, display and logs.
type State struct {
	Name   string
	Limits Limits  // effective limits now (0 = unknown), with the enforcement in force
	Source Sources // where each limit comes from

	MinuteRequests int // admitted in the last 60 s
	MinuteTokens   int
	DayRequests    int // admitted in the current day period
	DayTokens      int
	// DayRemainingRequests and DayRemainingTokens are what the daily limits still admit; -1 when the
	// daily limit is unknown (unlimited as far as we know).
	DayRemainingRequests int
	DayRemainingTokens   int
	DayExhausted         bool      // no request can be admitted before DayResetAt
	DayResetAt           time.Time // when the daily counters start over

	RateLimited int       // 429s reported through Ticket.RateLimited
	PausedUntil time.Time // zero when not paused
	Waiting     int       // Wait calls currently sleeping until their slot
}

// Limiter paces the requests of one (provider, model). It is safe for concurrent use.
type Limiter struct {
	name string
	now  func() time.Time

	mu  sync.Mutex
	cfg Limits // configured
	eff Limits // effective; eff.Window and eff.Quantum are the enforcement in force
	src Sources
	win window  // admissions over the window (plus its guard)
	sub *window // admissions over the quantum (plus its guard); nil when there is none
	// maxReset is the longest reset time the headers have stated: the provider's window is at least
	// that long, and at most about that long once the lane has been busy.
	maxReset time.Duration
	// perWindow is set when the headers state the window's figures rather than per-minute ones.
	perWindow, headerScaleKnown bool
	// quantumFrom429 is set when the sub-window was learned from a 429 with budget left: later reset
	// times do not undo it.
	quantumFrom429 bool
	// answered is set by the first answer; until then a lane with unknown limits sends only Probes.
	answered    bool
	outstanding int // tickets reserved and not yet finished
	// recent holds the last recentAnswers answers, true for a 429 its headers did not explain.
	recent     []bool
	recentNext int
	paused     time.Time
	seq        uint64
	waiting    map[*Ticket]struct{}
	// changed is closed (and replaced) when waiting tickets were invalidated by a pause or a lower
	// limit, to wake their Wait calls so they reschedule.
	changed chan struct{}

	dayEnd       time.Time
	dayGen       int // counts day periods, so a ticket corrects only the counters it was counted in
	dayReqs      int
	dayTokens    int
	dayExhausted bool

	adaptive     bool    // RPM is driven by AIMD
	rpmF         float64 // the adaptive RPM, fractional so small increases accumulate
	adaptiveCap  int     // configured or advertised RPM the increase must not exceed; 0 = none
	recoverTo    float64 // the rate the provider accepted before the last decrease
	lastDecrease time.Time
	consec429    int
	n429         int
}

// New returns a lane named name (for errors, e.g. "openai/gpt-4o-mini") with configured limits l
// (zero fields unknown), reading time from now (time.Now when nil).
func New(name string, l Limits, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	t := now()
	ln := &Limiter{
		name:    name,
		now:     now,
		cfg:     l,
		waiting: make(map[*Ticket]struct{}),
		changed: make(chan struct{}),
		dayEnd:  t.Add(day),
	}
	switch {
	case l.Window > 0 || l.Quantum > 0:
		ln.src.Window, ln.src.Quantum = SourceConfig, SourceConfig
		ln.eff.Window, ln.eff.Quantum = cmp.Or(l.Window, providerWindow), l.Quantum
	default: // unknown: one second's share at a time until the headers tell
		ln.eff.Window, ln.eff.Quantum = providerWindow, defaultQuantum
	}
	ln.win = window{span: ln.eff.Window + guardFor(ln.eff.Window), quantum: mergeFor(ln.eff.Window)}
	ln.setQuantumLocked(t, ln.eff.Quantum)
	ln.setLimitLocked(t, kindRPM, l.RPM, SourceConfig)
	ln.setLimitLocked(t, kindTPM, l.TPM, SourceConfig)
	ln.setLimitLocked(t, kindRPD, l.RPD, SourceConfig)
	ln.setLimitLocked(t, kindTPD, l.TPD, SourceConfig)
	return ln
}

// Name returns the lane's name.
func (l *Limiter) Name() string { return l.name }

// Wait blocks until a request of tokens estimated tokens (prompt estimate + max_tokens) may be sent
// under every known limit and any pause, reserves it, and returns its Ticket. The caller must finish
// the ticket with Settle, RateLimited or Cancel. Wait fails at once with an error wrapping
// ErrDailyExhausted or ErrTooLarge when the request cannot be admitted today or at all, and with an
// error wrapping ctx.Err() when ctx ends first (the reservation is then released).
func (l *Limiter) Wait(ctx context.Context, tokens int) (*Ticket, error) {
	t, err := l.Reserve(tokens)
	if err != nil {
		return nil, err
	}
	if err := t.Wait(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// Reserve takes the earliest slot for a request of tokens now, without waiting, and returns its
// Ticket; the caller then calls the ticket's Wait (or Cancel). Reserving and waiting apart lets a
// caller choose among lanes and hold its place under its own lock. While a lane with unknown limits
// waits for its probes' answers the ticket holds no slot yet: Wait takes one when it may. It fails
// like Wait with ErrDailyExhausted or ErrTooLarge.
func (l *Limiter) Reserve(tokens int) (*Ticket, error) {
	tokens = max(tokens, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.probingLocked() {
		return &Ticket{lane: l, tokens: tokens, state: stateInvalid}, nil
	}
	return l.reserveLocked(l.now(), tokens, nil)
}

// Wait sleeps until the ticket's slot (taking one again when a pause or a stricter limit moved it)
// and marks the request sent. It fails with an error wrapping ErrDailyExhausted or ErrTooLarge when
// a new slot cannot be had, and wrapping ctx.Err() when ctx ends first (the slot is then released).
func (t *Ticket) Wait(ctx context.Context) error {
	l := t.lane
	for {
		if err := ctx.Err(); err != nil {
			l.mu.Lock()
			if t.state == stateWaiting {
				l.cancelLocked(t, l.now())
			}
			l.mu.Unlock()
			return fmt.Errorf("ratelimit: %s: %w", l.name, err)
		}
		l.mu.Lock()
		if t.state == stateInvalid {
			if l.probingLocked() {
				// Limits unknown and no answer yet: wait for the probes' answers to set the pace.
				changed := l.changed
				l.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-changed:
				}
				continue
			}
			if _, err := l.reserveLocked(l.now(), t.tokens, t); err != nil {
				t.state = stateDone
				l.mu.Unlock()
				return err
			}
		}
		l.mu.Unlock()
		ok, err := l.await(ctx, t)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// The slot was invalidated by a pause or a lower limit: schedule again.
	}
}

// await sleeps until t's slot. It returns false when the slot was invalidated meanwhile.
func (l *Limiter) await(ctx context.Context, t *Ticket) (bool, error) {
	for {
		l.mu.Lock()
		if t.state == stateInvalid {
			l.mu.Unlock()
			return false, nil
		}
		d := t.at.Sub(l.now())
		if d <= 0 {
			delete(l.waiting, t)
			t.state = stateSent
			l.mu.Unlock()
			return true, nil
		}
		if dl, ok := ctx.Deadline(); ok && dl.Before(t.at) {
			// Like rate.Limiter.WaitN: fail now rather than sleep until the deadline, so the caller
			// can use another lane at once.
			l.cancelLocked(t, l.now())
			l.mu.Unlock()
			return false, fmt.Errorf("ratelimit: %s: slot in %v is past the deadline: %w",
				l.name, d.Round(time.Millisecond), context.DeadlineExceeded)
		}
		changed := l.changed
		l.mu.Unlock()

		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			l.mu.Lock()
			if t.state == stateWaiting {
				l.cancelLocked(t, l.now())
			}
			l.mu.Unlock()
			return false, fmt.Errorf("ratelimit: %s: %w", l.name, ctx.Err())
		case <-changed:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// Delay returns how long a request of tokens would wait if Wait were called now, without reserving
// anything, or Never when Wait would fail with ErrDailyExhausted or ErrTooLarge.
func (l *Limiter) Delay(tokens int) time.Duration { return l.DelayAt(l.now(), tokens) }

// DelayAt is Delay at the explicit time now (never earlier than the lane's last call).
func (l *Limiter) DelayAt(now time.Time, tokens int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, err := l.planLocked(now, max(tokens, 0))
	if err != nil {
		return Never
	}
	if l.probingLocked() {
		return max(at.Sub(now), defaultQuantum) // until the probes answer; a second is typical
	}
	return max(at.Sub(now), 0)
}

// ReserveAt is the decision of Wait at the explicit time now, without the wait: it reserves the
// earliest slot for a request of tokens and returns its Ticket, whose At is when the request may be
// sent. The caller commits to sending then (like rate.Limiter.ReserveN): unlike a Wait, the slot is
// not moved by a later pause or stricter limit, and it does not wait for the probes of a lane whose
// limits are unknown. Finish the ticket as after Wait. It fails like Wait with ErrDailyExhausted or
// ErrTooLarge.
func (l *Limiter) ReserveAt(now time.Time, tokens int) (*Ticket, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, err := l.reserveLocked(now, max(tokens, 0), nil)
	if err != nil {
		return nil, err
	}
	delete(l.waiting, t)
	t.state = stateSent
	return t, nil
}

// Pause stops admissions on this lane for d from now (a 429's Retry-After). Pauses only extend.
func (l *Limiter) Pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.pauseUntilLocked(now, now.Add(d))
}

// PauseUntil stops admissions on this lane until t. Pauses only extend; requests already waiting
// for a slot before t are rescheduled after it.
func (l *Limiter) PauseUntil(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pauseUntilLocked(l.now(), t)
}

// ExhaustDay marks the lane's daily budget as spent until resetAt (the day's end as the lane knows it
// when resetAt is zero): a provider said so, e.g. a 429 for a per-day quota. Wait then fails with
// ErrDailyExhausted.
func (l *Limiter) ExhaustDay(resetAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rollDayLocked(l.now())
	if !resetAt.IsZero() {
		l.dayEnd = resetAt
	}
	l.dayExhausted = true
	l.invalidateLocked(l.now(), func(*Ticket) bool { return true })
}

// Snapshot returns the lane's current state.
func (l *Limiter) Snapshot() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.rollDayLocked(now)
	l.win.prune(now)
	s := State{
		Name:                 l.name,
		Limits:               l.eff,
		Source:               l.src,
		DayRequests:          l.dayReqs,
		DayTokens:            l.dayTokens,
		DayRemainingRequests: -1,
		DayRemainingTokens:   -1,
		DayExhausted:         l.dayExhausted,
		DayResetAt:           l.dayEnd,
		RateLimited:          l.n429,
		Waiting:              len(l.waiting),
	}
	s.MinuteRequests, s.MinuteTokens = l.win.sumBetween(now.Add(-providerWindow), now)
	if l.eff.RPD > 0 {
		s.DayRemainingRequests = max(l.eff.RPD-l.dayReqs, 0)
	}
	if l.eff.TPD > 0 {
		s.DayRemainingTokens = max(l.eff.TPD-l.dayTokens, 0)
	}
	if l.dayExhausted || s.DayRemainingRequests == 0 || s.DayRemainingTokens == 0 {
		s.DayExhausted = true
	}
	if l.paused.After(now) {
		s.PausedUntil = l.paused
	}
	return s
}

// rollDayLocked starts a new day period when the current one has ended.
func (l *Limiter) rollDayLocked(now time.Time) {
	if now.Before(l.dayEnd) {
		return
	}
	l.dayReqs, l.dayTokens, l.dayExhausted = 0, 0, false
	l.dayGen++
	// Keep the period's phase: the provider's day does not restart when we happen to look.
	for !now.Before(l.dayEnd) {
		l.dayEnd = l.dayEnd.Add(day)
	}
}

// planLocked returns when a request of n tokens may be admitted, or why it cannot be.
func (l *Limiter) planLocked(now time.Time, n int) (time.Time, error) {
	l.rollDayLocked(now)
	l.win.prune(now)
	if l.sub != nil {
		l.sub.prune(now)
	}
	if most := l.mostTokensLocked(); (most > 0 && n > most) || (l.eff.TPD > 0 && n > l.eff.TPD) {
		return time.Time{}, fmt.Errorf("ratelimit: %s: %d tokens (limits %d/min, at most %d at once, %d/day): %w",
			l.name, n, l.eff.TPM, most, l.eff.TPD, ErrTooLarge)
	}
	if l.dayExhausted || (l.eff.RPD > 0 && l.dayReqs+1 > l.eff.RPD) || (l.eff.TPD > 0 && l.dayTokens+n > l.eff.TPD) {
		return time.Time{}, fmt.Errorf("ratelimit: %s: %w until %s", l.name, ErrDailyExhausted,
			l.dayEnd.UTC().Format(time.RFC3339))
	}
	at := now
	if l.paused.After(at) {
		at = l.paused
	}
	if last := l.win.lastAt(); last.After(at) {
		at = last // first come, first served
	}
	// Each log only loses entries as time passes, so a time that suits the window still suits it
	// after the quantum's wait.
	at = l.win.readyAt(at, n, shareOf(l.eff.RPM, l.eff.Window), shareOf(l.eff.TPM, l.eff.Window))
	if l.sub != nil {
		at = l.sub.readyAt(at, n, l.subShareLocked(l.eff.RPM), l.subShareLocked(l.eff.TPM))
	}
	return at, nil
}

// mostTokensLocked is the most tokens one request may have: the TPM's share of the smallest
// enforced window (0 = unknown).
func (l *Limiter) mostTokensLocked() int {
	if l.eff.TPM <= 0 {
		return 0
	}
	if l.eff.Quantum > 0 && l.src.Quantum != SourceUnknown {
		return shareOf(l.eff.TPM, l.eff.Quantum)
	}
	return shareOf(l.eff.TPM, l.eff.Window)
}

// subShareLocked is a per-minute limit's share of the sub-window. A configured or learned one is
// the provider's share, rounded down as providers do; the one assumed until the headers tell only
// shapes bursts (the window's log holds the limit), so it is rounded up and a low rate loses nothing.
func (l *Limiter) subShareLocked(perMinute int) int {
	if perMinute <= 0 || l.src.Quantum != SourceUnknown {
		return shareOf(perMinute, l.eff.Quantum)
	}
	q := int64(l.eff.Quantum)
	return int((int64(perMinute)*q + int64(providerWindow) - 1) / int64(providerWindow))
}

// probingLocked reports whether Wait must hold a request back: no limit is known, no answer has
// come, and Probes requests are already out.
func (l *Limiter) probingLocked() bool {
	return !l.answered && l.eff.RPM == 0 && l.eff.TPM == 0 && l.outstanding >= Probes
}

// answeredLocked records an answer (the first one ends probing) and wakes the waiting requests.
func (l *Limiter) answeredLocked() {
	if !l.answered {
		l.answered = true
		l.wakeLocked()
	}
}

// wakeLocked wakes every Wait call, to look at the lane again.
func (l *Limiter) wakeLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// setQuantumLocked makes q (0 = none) the enforced sub-window, its log holding the admissions of
// the main log that are still inside it.
func (l *Limiter) setQuantumLocked(now time.Time, q time.Duration) {
	l.eff.Quantum = q
	if q <= 0 {
		if l.sub != nil {
			// The waiting requests were paced a sub-window at a time: they may go at once now.
			l.sub = nil
			l.invalidateLocked(now, func(*Ticket) bool { return true })
		}
		return
	}
	span := q + guardFor(q)
	if l.sub != nil && l.sub.span == span {
		return
	}
	sub := &window{span: span, quantum: mergeFor(q)}
	for _, e := range l.win.entries {
		if e.at.Add(span).After(now) {
			ne := &entry{at: e.at, first: e.at, reqs: e.reqs, tokens: e.tokens, limited: e.limited, phantom: e.phantom}
			sub.entries = append(sub.entries, ne)
			sub.reqs += e.reqs
			sub.tokens += e.tokens
		}
	}
	l.sub = sub
	// Tickets counted in the old sub-window log are not in this one: a later cancel must not
	// subtract them from it.
	for t := range l.waiting {
		t.sub = nil
	}
	l.invalidateLocked(now, func(*Ticket) bool { return true })
}

// setWindowLocked makes d the enforced window: the main log's span follows.
func (l *Limiter) setWindowLocked(now time.Time, d time.Duration) {
	if d == l.eff.Window {
		return
	}
	stricter := d > l.eff.Window
	l.eff.Window = d
	l.win.span = d + guardFor(d)
	l.win.quantum = mergeFor(d)
	if stricter || l.eff.RPM > 0 || l.eff.TPM > 0 {
		l.invalidateLocked(now, func(*Ticket) bool { return true })
	}
}

// reserveLocked plans a request of n tokens and reserves its slot.
func (l *Limiter) reserveLocked(now time.Time, n int, t *Ticket) (*Ticket, error) {
	at, err := l.planLocked(now, n)
	if err != nil {
		return nil, err
	}
	l.seq++
	if t == nil {
		t = &Ticket{}
	}
	*t = Ticket{lane: l, seq: l.seq, at: at, tokens: n, day: l.dayGen, state: stateWaiting}
	t.ent = l.win.add(at, n)
	if l.sub != nil {
		t.sub, t.subEnt = l.sub, l.sub.add(at, n)
	}
	l.outstanding++
	// Waiting from the start, so a pause or a stricter limit arriving before Wait sleeps reschedules it.
	l.waiting[t] = struct{}{}
	l.dayReqs++
	l.dayTokens += n
	return t, nil
}

// cancelLocked releases everything t reserved that can still be released at now.
func (l *Limiter) cancelLocked(t *Ticket, now time.Time) {
	delete(l.waiting, t)
	t.state = stateDone
	l.outstanding--
	l.wakeProbesLocked()
	l.win.remove(t.ent, t.tokens)
	if t.sub != nil && t.sub == l.sub {
		t.sub.remove(t.subEnt, t.tokens)
	}
	if t.day == l.dayGen {
		l.dayReqs--
		l.dayTokens -= t.tokens
	}
}

// invalidateLocked cancels the waiting tickets that match, newest first (so the logs drop their
// emptied tail entries), and wakes their Wait calls to schedule again.
func (l *Limiter) invalidateLocked(now time.Time, match func(*Ticket) bool) {
	var ts []*Ticket
	for t := range l.waiting {
		if match(t) {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return
	}
	slices.SortFunc(ts, func(a, b *Ticket) int { return cmp.Compare(b.seq, a.seq) })
	for _, t := range ts {
		l.cancelLocked(t, now)
		t.state = stateInvalid
	}
	l.wakeLocked()
}

// wakeProbesLocked wakes the requests held back by probing when a probe's slot frees.
func (l *Limiter) wakeProbesLocked() {
	if !l.answered && l.eff.RPM == 0 && l.eff.TPM == 0 {
		l.wakeLocked()
	}
}

func (l *Limiter) pauseUntilLocked(now, until time.Time) {
	if !until.After(l.paused) || !until.After(now) {
		return
	}
	l.paused = until
	// All of them, not only those before until: a later slot left in place would hold the log's
	// tail and push the rescheduled earlier ones behind it.
	l.invalidateLocked(now, func(*Ticket) bool { return true })
}

// limit kinds, for setLimitLocked.
type kind int

const (
	kindRPM kind = iota
	kindTPM
	kindRPD
	kindTPD
)

// setLimitLocked makes v (0 = unknown) the effective value of one limit. Pacing follows at once;
// waiting requests are rescheduled when the limit became stricter.
func (l *Limiter) setLimitLocked(now time.Time, k kind, v int, src Source) {
	if v <= 0 {
		v, src = 0, SourceUnknown
	}
	var cur *int
	var s *Source
	switch k {
	case kindRPM:
		cur, s = &l.eff.RPM, &l.src.RPM
	case kindTPM:
		cur, s = &l.eff.TPM, &l.src.TPM
	case kindRPD:
		cur, s = &l.eff.RPD, &l.src.RPD
	case kindTPD:
		cur, s = &l.eff.TPD, &l.src.TPD
	}
	old := *cur
	*cur, *s = v, src
	if k == kindRPM && src != SourceAdaptive {
		l.adaptive = false
	}
	if v != 0 && (old == 0 || v < old) {
		l.invalidateLocked(now, func(*Ticket) bool { return true })
	}
}

// Reservation states of a Ticket.
const (
	stateWaiting = iota // reserved, Wait sleeping until its time
	stateSent           // returned by Wait: the request may be sent
	stateInvalid        // cancelled by a pause or a stricter limit while waiting; Wait reschedules
	stateDone           // settled, rate-limited or cancelled
)

// Ticket is one admitted request. Finish it exactly once: Settle when the provider answered (other
// than 429), RateLimited on a 429, Cancel when the request was never sent. Later calls are no-ops.
type Ticket struct {
	lane   *Limiter
	seq    uint64
	at     time.Time
	tokens int
	day    int // the day period the ticket was counted in
	state  int
	ent    *entry  // in the window's log
	sub    *window // the quantum's log the ticket is counted in; nil = none
	subEnt *entry
}

// At returns the time the request was admitted.
func (t *Ticket) At() time.Time { return t.at }

// Tokens returns the estimated tokens the request was admitted with.
func (t *Ticket) Tokens() int { return t.tokens }

// Settle records that the provider answered (any status but 429) after using actualTokens tokens
// (input + output from the response; 0 when unknown keeps the estimate). An under-estimate is
// corrected in the logs and the daily count. An over-estimate is not refunded: providers charge the
// admission estimate (prompt + max_tokens) against the per-minute limit.
func (t *Ticket) Settle(actualTokens int) {
	l := t.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.state != stateSent {
		return
	}
	t.state = stateDone
	l.outstanding--
	now := l.now()
	if extra := actualTokens - t.tokens; extra > 0 {
		l.win.addTokens(t.ent, extra)
		if t.sub != nil && t.sub == l.sub {
			t.sub.addTokens(t.subEnt, extra)
		}
		if t.day == l.dayGen {
			l.dayTokens += extra
		}
	}
	l.consec429 = 0
	l.noteAnswerLocked(false)
	l.answeredLocked()
	if l.adaptive {
		l.increaseLocked(now)
	}
}

// Sent records that the ticket's request leaves now, when that is later than its slot (it waited
// for an in-flight slot after its rate-limit wait): the provider counts it from its arrival, so the
// logs count it from now, and it leaves the windows no earlier than it leaves the provider's.
func (t *Ticket) Sent() {
	l := t.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if t.state != stateSent || !now.After(t.at.Add(l.win.quantum)) {
		return
	}
	t.ent = l.win.move(t.ent, t.tokens, now)
	if t.sub != nil && t.sub == l.sub {
		t.subEnt = t.sub.move(t.subEnt, t.tokens, now)
	}
}

// Cancel releases the reservation of a request that was never sent (or, after Reserve, never
// waited for).
func (t *Ticket) Cancel() {
	l := t.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	switch t.state {
	case stateSent, stateWaiting:
		l.cancelLocked(t, l.now())
	case stateInvalid:
		t.state = stateDone
	}
}
