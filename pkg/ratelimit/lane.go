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
	// providerWindow is the window providers count their per-minute limits over.
	providerWindow = time.Minute
	// logSpan is the window the lane enforces: the provider's plus a guard for clock and network
	// jitter between our admission and the provider's arrival time.
	logSpan = providerWindow + time.Second
	// logQuantum is how close admissions must be to share a log entry.
	logQuantum = 60 * time.Millisecond
	// day is the length of a daily-limit period when the provider does not say when it resets.
	day = 24 * time.Hour

	// Backoff after a 429 that carries no Retry-After.
	minBackoff = time.Second
	maxBackoff = 30 * time.Second

	// AIMD parameters (see the package doc).
	mdMeasured = 0.95 // decrease to this share of the requests the provider accepted in the window
	mdFloor    = 0.5  // but never below this share of the current rate
	aiStep     = 0.02 // requests per minute added per request answered without a 429
	recovery   = 3.0  // below the accepted level, close recovery/rpm of the gap per answer (95% a minute)
)

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
type Limits struct {
	RPM int // requests per minute
	TPM int // tokens per minute (prompt estimate + max_tokens at admission)
	RPD int // requests per day
	TPD int // tokens per day
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
)

var sourceNames = [...]string{"unknown", "config", "headers", "adaptive"}

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
}

// State is a snapshot of a lane for selection, display and logs.
type State struct {
	Name   string
	Limits Limits  // effective limits now (0 = unknown)
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

	mu      sync.Mutex
	cfg     Limits // configured
	eff     Limits // effective
	src     Sources
	rpm     *bucket // nil while RPM is unknown
	tpm     *bucket // nil while TPM is unknown
	win     window
	paused  time.Time
	seq     uint64
	waiting map[*Ticket]struct{}
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
		win:     window{span: logSpan, quantum: logQuantum},
		waiting: make(map[*Ticket]struct{}),
		changed: make(chan struct{}),
		dayEnd:  t.Add(day),
	}
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
	tokens = max(tokens, 0)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ratelimit: %s: %w", l.name, err)
		}
		l.mu.Lock()
		t, err := l.reserveLocked(l.now(), tokens)
		l.mu.Unlock()
		if err != nil {
			return nil, err
		}
		ok, err := l.await(ctx, t)
		if err != nil {
			return nil, err
		}
		if ok {
			return t, nil
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
	return max(at.Sub(now), 0)
}

// ReserveAt is the decision of Wait at the explicit time now, without the wait: it reserves the
// earliest slot for a request of tokens and returns its Ticket, whose At is when the request may be
// sent. The caller commits to sending then (like rate.Limiter.ReserveN): unlike a Wait, the slot is
// not moved by a later pause or stricter limit. Finish the ticket as after Wait. It fails like Wait
// with ErrDailyExhausted or ErrTooLarge.
func (l *Limiter) ReserveAt(now time.Time, tokens int) (*Ticket, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, err := l.reserveLocked(now, max(tokens, 0))
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
	if (l.eff.TPM > 0 && n > l.eff.TPM) || (l.eff.TPD > 0 && n > l.eff.TPD) {
		return time.Time{}, fmt.Errorf("ratelimit: %s: %d tokens (limits %d/min, %d/day): %w",
			l.name, n, l.eff.TPM, l.eff.TPD, ErrTooLarge)
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
	if l.rpm != nil {
		at = l.rpm.readyAt(at, 1)
	}
	if l.tpm != nil {
		at = l.tpm.readyAt(at, n)
	}
	return l.win.readyAt(at, n, l.eff.RPM, l.eff.TPM), nil
}

// reserveLocked plans a request of n tokens and reserves its slot.
func (l *Limiter) reserveLocked(now time.Time, n int) (*Ticket, error) {
	at, err := l.planLocked(now, n)
	if err != nil {
		return nil, err
	}
	l.seq++
	t := &Ticket{lane: l, seq: l.seq, at: at, tokens: n, day: l.dayGen, state: stateWaiting}
	if l.rpm != nil {
		t.rpm, t.rpmRes = l.rpm, l.rpm.reserve(at, 1)
	}
	if l.tpm != nil {
		t.tpm, t.tpmRes = l.tpm, l.tpm.reserve(at, n)
	}
	t.ent = l.win.add(at, n)
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
	if t.tpm != nil {
		t.tpm.cancelAt(t.tpmRes, now)
	}
	if t.rpm != nil {
		t.rpm.cancelAt(t.rpmRes, now)
	}
	l.win.remove(t.ent, t.tokens)
	if t.day == l.dayGen {
		l.dayReqs--
		l.dayTokens -= t.tokens
	}
}

// invalidateLocked cancels the waiting tickets that match, newest first (so the token buckets get
// back as much as they can), and wakes their Wait calls to schedule again.
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
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Limiter) pauseUntilLocked(now, until time.Time) {
	if !until.After(l.paused) || !until.After(now) {
		return
	}
	l.paused = until
	l.invalidateLocked(now, func(t *Ticket) bool { return t.at.Before(until) })
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
	switch k {
	case kindRPM:
		perMinute := float64(v)
		if src == SourceAdaptive {
			perMinute = l.rpmF // pace at the fractional rate so each small increase counts
		} else {
			l.adaptive = false
		}
		l.rpm = l.pace(now, l.rpm, perMinute)
	case kindTPM:
		l.tpm = l.pace(now, l.tpm, float64(v))
	}
	if v != 0 && (old == 0 || v < old) {
		l.invalidateLocked(now, func(*Ticket) bool { return true })
	}
}

// pace returns b adjusted to perMinute: nil when unknown, a new full bucket when newly known.
func (l *Limiter) pace(now time.Time, b *bucket, perMinute float64) *bucket {
	switch {
	case perMinute <= 0:
		return nil
	case b == nil:
		at := now
		if last := l.win.lastAt(); last.After(at) {
			at = last
		}
		return newBucket(perMinute, at)
	default:
		b.setLimit(now, perMinute)
		return b
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
	ent    *entry
	rpm    *bucket
	tpm    *bucket
	rpmRes hold
	tpmRes hold
}

// At returns the time the request was admitted.
func (t *Ticket) At() time.Time { return t.at }

// Tokens returns the estimated tokens the request was admitted with.
func (t *Ticket) Tokens() int { return t.tokens }

// Settle records that the provider answered (any status but 429) after using actualTokens tokens
// (input + output from the response; 0 when unknown keeps the estimate). An under-estimate is
// charged as debt to the token bucket and corrected in the log and the daily count. An over-estimate
// is not refunded: providers charge the admission estimate (prompt + max_tokens) against the
// per-minute limit, and x/time/rate cannot give tokens back.
func (t *Ticket) Settle(actualTokens int) {
	l := t.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.state != stateSent {
		return
	}
	t.state = stateDone
	now := l.now()
	if extra := actualTokens - t.tokens; extra > 0 {
		if l.tpm != nil {
			l.tpm.reserve(now, extra)
		}
		l.win.addTokens(t.ent, extra)
		if t.day == l.dayGen {
			l.dayTokens += extra
		}
	}
	l.consec429 = 0
	if l.adaptive {
		l.increaseLocked(now)
	}
}

// Cancel releases the reservation of a request that was never sent.
func (t *Ticket) Cancel() {
	l := t.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.state != stateSent {
		return
	}
	l.cancelLocked(t, l.now())
}
