package shared

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
)

// Lane is one (base URL, model, API key) lane whose admissions are shared with every process using
// the same Redis. Its methods mirror ratelimit.Limiter's so the engine can use either. It is safe for
// concurrent use.
//
// Round trips: Wait is one (the admission script); Settle is one only when it carries news (see
// settleNeeded), RateLimited one; Observe sends nothing itself, its headers ride on the lane's next
// call. Delay and Snapshot read the state the last reply
// brought and never call Redis. Cancel is one, only on abnormal paths.
type Lane struct {
	st    *Store
	id    string
	info  LaneInfo
	keys  []string
	cfg   ratelimit.Limits
	name  string
	keyFP string // first 8 hex digits of the key's SHA-256, for display

	mu      sync.Mutex
	v       view
	pending *provider.RateLimits // headers to send with the next call
	limited bool                 // a 429 since the last settlement sent: the next one ends the streak
	waiting int
	// changed is closed (and replaced) when a reply shows a longer pause than known, so waiting
	// admissions reschedule after it.
	changed chan struct{}
	// local runs the lane while Redis is unreachable, at this process's share of the last ceiling.
	local *ratelimit.Limiter

	// Probing: while no per-minute limit is known and this process has had no answer on the lane,
	// at most probeTickets requests are out (see Wait). probed is closed at the first answer.
	probe    chan struct{}
	probed   chan struct{}
	probeEnd sync.Once
}

// probeTickets bounds the requests a process sends on a lane before its first answer when no
// per-minute limit is known yet. The engine takes a ticket before its in-flight slot, so without
// this every queued prompt would be admitted at once, before the first response's headers could
// tell the lane its limits; after the first answer the lane is paced by what it learned (or, with
// no limit headers at all, by the engine's concurrency alone).
const probeTickets = 4

// view is the lane's shared state as the last reply showed it; durations are relative to at.
type view struct {
	at                   time.Time // local time the reply arrived; zero before the first
	lim                  ratelimit.Limits
	src                  ratelimit.Sources
	winReqs, winTokens   int
	dayReqs, dayTokens   int
	dayExhausted         bool
	pause, dayEnd, brk   time.Duration
	tail                 time.Duration // until the latest admission's slot
	rateLimited, procs   int
	pausedUntil, brkOpen time.Time
}

func newLane(s *Store, id string, info LaneInfo, cfg ratelimit.Limits) *Lane {
	name := info.Name
	if name == "" {
		name = info.Provider + "/" + info.Model
	}
	l := &Lane{st: s, id: id, info: info, keys: laneKeys(id), cfg: cfg, name: name, changed: make(chan struct{}),
		probe: make(chan struct{}, probeTickets), probed: make(chan struct{})}
	l.info.APIKey = "" // only the hash is kept, in id and fingerprint
	l.info.Provider, l.info.BaseURL = info.Provider, normalizeBase(info.BaseURL)
	l.keyFP = info.KeyFingerprint()
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	l.register(ctx, pipe)
	cmd := l.script(ctx, pipe, "beat", nil)
	if _, err := pipe.Exec(ctx); err == nil {
		if r, err := parseReply(cmd); err == nil {
			l.apply(r)
		}
	}
	if cfg.RPM > 0 || cfg.TPM > 0 || l.v.lim.RPM > 0 || l.v.lim.TPM > 0 {
		l.endProbe() // limits are known already: configured or learned by another process
	}
	return l
}

func (l *Lane) endProbe() { l.probeEnd.Do(func() { close(l.probed) }) }

// enterProbe waits, while the lane probes, for one of the probe's tickets; it reports whether it
// took one (to give back when the ticket finishes).
func (l *Lane) enterProbe(ctx context.Context) (bool, error) {
	select {
	case <-l.probed:
		return false, nil
	default:
	}
	select {
	case <-l.probed:
		return false, nil
	case l.probe <- struct{}{}:
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("shared: %s: %w", l.name, ctx.Err())
	}
}

// Name returns the lane's name.
func (l *Lane) Name() string { return l.name }

// ID returns the lane's shared identity.
func (l *Lane) ID() string { return l.id }

// register records the lane's description for `llmbatch limits`.
func (l *Lane) register(ctx context.Context, pipe redis.Pipeliner) {
	pipe.SAdd(ctx, lanesKey, l.id)
	pipe.HSet(ctx, l.keys[0], "name", l.name, "provider", l.info.Provider, "base", l.info.BaseURL,
		"model", l.info.Model, "key", l.keyFP)
}

// script runs the lane script's op with its arguments after the common ones; it takes the pending
// observation with it. In a pipeline (c is a redis.Pipeliner) the script's text is sent, since
// EVALSHA's fallback to EVAL after a server restart cannot happen inside a pipeline.
func (l *Lane) script(ctx context.Context, c redis.Scripter, op string, args []any) *redis.Cmd {
	l.mu.Lock()
	obs := l.pending
	l.pending = nil
	l.mu.Unlock()
	a := make([]any, 0, 16+len(args))
	a = append(a, op, l.st.id, l.cfg.RPM, l.cfg.TPM, l.cfg.RPD, l.cfg.TPD)
	a = appendObs(a, obs, l.st.now())
	a = append(a, args...)
	if _, pipelined := c.(redis.Pipeliner); pipelined {
		return l.st.lane.Eval(ctx, c, l.keys, a...)
	}
	return l.st.lane.Run(ctx, c, l.keys, a...)
}

// appendObs encodes rate-limit headers as the script's ten observation arguments.
func appendObs(a []any, rl *provider.RateLimits, now time.Time) []any {
	if rl == nil {
		return append(a, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	age := int64(0)
	if !rl.ObservedAt.IsZero() && rl.ObservedAt.Before(now) {
		age = now.Sub(rl.ObservedAt).Milliseconds()
	}
	return append(a, b2i(rl.HasRequests), rl.LimitRequests, rl.RemainingRequests, rl.ResetRequests.Milliseconds(),
		b2i(rl.RequestsPerDay), b2i(rl.HasTokens), rl.LimitTokens, rl.RemainingTokens, rl.ResetTokens.Milliseconds(), age)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reply is the script's answer: the op's result and the lane's state.
type reply struct {
	status int64
	wait   time.Duration
	member string
	dayEnd int64
	procs  int
	state  [18]int64
}

func parseReply(cmd *redis.Cmd) (reply, error) {
	var r reply
	vals, err := cmd.Slice()
	if err != nil {
		return r, err
	}
	if len(vals) != 6+len(r.state) {
		return r, fmt.Errorf("shared: lane script returned %d values, want %d", len(vals), 6+len(r.state))
	}
	num := func(v any) int64 {
		switch x := v.(type) {
		case int64:
			return x
		case string:
			n, _ := strconv.ParseInt(x, 10, 64)
			return n
		}
		return 0
	}
	r.status = num(vals[0])
	r.wait = time.Duration(num(vals[1])) * time.Millisecond
	r.member, _ = vals[2].(string)
	r.dayEnd = num(vals[3])
	r.procs = int(num(vals[4]))
	for i := range r.state {
		r.state[i] = num(vals[6+i])
	}
	return r, nil
}

// apply makes r the lane's view; a longer pause wakes waiting admissions to reschedule.
func (l *Lane) apply(r reply) {
	now := l.st.now()
	st := r.state
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	v := view{
		at:  now,
		lim: ratelimit.Limits{RPM: int(st[0]), TPM: int(st[1]), RPD: int(st[2]), TPD: int(st[3])},
		src: ratelimit.Sources{RPM: ratelimit.Source(st[4]), TPM: ratelimit.Source(st[5]),
			RPD: ratelimit.Source(st[6]), TPD: ratelimit.Source(st[7])},
		winReqs: int(st[8]), winTokens: int(st[9]), dayReqs: int(st[10]), dayTokens: int(st[11]),
		dayExhausted: st[12] == 1, pause: ms(st[13]), rateLimited: int(st[14]), dayEnd: ms(st[15]),
		brk: ms(st[16]), tail: ms(st[17]), procs: r.procs,
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v.procs == 0 {
		v.procs = l.v.procs // only heartbeats count the processes
	}
	if v.pause > 0 {
		v.pausedUntil = now.Add(v.pause)
	}
	if v.brk > 0 {
		v.brkOpen = now.Add(v.brk)
	}
	// A pause this reply reveals ends later than the one known: admissions sleeping until a slot
	// before its end must reschedule. (A few ms of jitter between replies is not a new pause.)
	if v.pausedUntil.After(l.v.pausedUntil.Add(jitter)) {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.v = v
}

// call runs op and applies the reply. Connection failures switch the store to local limits and
// return errLost.
func (l *Lane) call(ctx context.Context, op string, args ...any) (reply, error) {
	if l.st.Down() {
		return reply{}, errLost
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	r, err := parseReply(l.script(ctx, l.st.rdb, op, args))
	if err != nil {
		if parent.Err() != nil {
			return r, fmt.Errorf("shared: %s: %w", l.name, parent.Err())
		}
		if connLost(err) {
			l.st.lost(err)
			return r, errLost
		}
		return r, fmt.Errorf("shared: %s: %s: %w", l.name, op, err)
	}
	l.apply(r)
	return r, nil
}

var errLost = errors.New("redis lost")

// jitter bounds the error of a server time converted to local time (a round trip on a LAN).
const jitter = 50 * time.Millisecond

// Ticket is one admitted request, shared or (while Redis is unreachable) local. Finish it exactly
// once with Settle, RateLimited or Cancel; later calls are no-ops.
type Ticket struct {
	lane   *Lane
	local  *ratelimit.Ticket
	member string // the window entry in Redis
	dayEnd int64  // the day period it was counted in
	at     time.Time
	tokens int
	probe  bool // holds one of the lane's probe tickets
	mu     sync.Mutex
	done   bool
}

// At returns the time the request was admitted.
func (t *Ticket) At() time.Time {
	if t.local != nil {
		return t.local.At()
	}
	return t.at
}

// Tokens returns the estimated tokens the request was admitted with.
func (t *Ticket) Tokens() int { return t.tokens }

// Wait blocks until a request of tokens estimated tokens may be sent under the lane's shared limits
// and pauses, reserves it, and returns its Ticket. Errors are those of ratelimit.Limiter.Wait: wrapping
// ratelimit.ErrDailyExhausted or ratelimit.ErrTooLarge when the request cannot be admitted today or
// at all, ctx's error when it ends first (the reservation is then released). While Redis is
// unreachable the lane's local limiter admits instead.
func (l *Lane) Wait(ctx context.Context, tokens int) (*Ticket, error) {
	tokens = max(tokens, 0)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("shared: %s: %w", l.name, err)
		}
		if loc := l.localLane(); loc != nil {
			lt, err := loc.Wait(ctx, tokens)
			if err != nil {
				return nil, err
			}
			return &Ticket{lane: l, local: lt, tokens: tokens}, nil
		}
		probe, err := l.enterProbe(ctx)
		if err != nil {
			return nil, err
		}
		r, err := l.call(ctx, "admit", tokens)
		if err != nil || r.status != 0 {
			l.leaveProbe(probe)
		}
		if errors.Is(err, errLost) {
			continue // now local
		}
		if err != nil {
			return nil, err
		}
		switch r.status {
		case 1:
			return nil, fmt.Errorf("shared: %s: %d tokens (limits %d/min, %d/day): %w",
				l.name, tokens, r.state[1], r.state[3], ratelimit.ErrTooLarge)
		case 2:
			return nil, fmt.Errorf("shared: %s: %w until %s", l.name, ratelimit.ErrDailyExhausted,
				l.st.now().Add(time.Duration(r.state[15])*time.Millisecond).UTC().Format(time.RFC3339))
		}
		t := &Ticket{lane: l, member: r.member, dayEnd: r.dayEnd, at: l.st.now().Add(r.wait), tokens: tokens, probe: probe}
		ok, err := l.await(ctx, t)
		if ok {
			return t, nil
		}
		t.release() // cancelled, past the deadline, or overtaken by a pause
		l.leaveProbe(probe)
		if err != nil {
			return nil, err
		}
	}
}

// await sleeps until t's slot; false when a pause learned meanwhile covers the slot.
func (l *Lane) await(ctx context.Context, t *Ticket) (bool, error) {
	l.mu.Lock()
	l.waiting++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
	}()
	for {
		l.mu.Lock()
		paused, changed := l.v.pausedUntil, l.changed
		l.mu.Unlock()
		// Both times are server times converted at different replies' arrival: allow for the
		// round trip between them, or a slot right at the pause's end would reschedule forever.
		if t.at.Add(jitter).Before(paused) {
			return false, nil
		}
		d := t.at.Sub(l.st.now())
		if d <= 0 {
			return true, nil
		}
		if dl, ok := ctx.Deadline(); ok && dl.Before(t.at) {
			return false, fmt.Errorf("shared: %s: slot in %v is past the deadline: %w",
				l.name, d.Round(time.Millisecond), context.DeadlineExceeded)
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false, fmt.Errorf("shared: %s: %w", l.name, ctx.Err())
		case <-changed:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// release gives back a shared reservation that was never sent (best effort: if Redis is gone the
// reservation just stays counted, which is conservative).
func (t *Ticket) release() {
	if t.local != nil || t.member == "" {
		return
	}
	_, _ = t.lane.call(context.Background(), "cancel", t.member, t.tokens, t.dayEnd)
}

// finish marks the ticket done; false when it already was.
func (t *Ticket) finish() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// settled ends the ticket's part in the probe: an answer (answered) ends the lane's probe, once
// Redis has the headers it brought, and the probe ticket is given back.
func (t *Ticket) settled(answered bool) {
	if answered {
		t.lane.endProbe()
	}
	t.lane.leaveProbe(t.probe)
}

func (l *Lane) leaveProbe(took bool) {
	if took {
		<-l.probe
	}
}

// Settle records that the provider answered (any status but 429) after using actualTokens tokens
// (0 = keep the estimate). An under-estimate is charged to the shared window and day; an
// over-estimate is not refunded (providers count the admission estimate).
func (t *Ticket) Settle(actualTokens int) {
	if !t.finish() {
		return
	}
	defer t.settled(true)
	if t.local != nil {
		t.local.Settle(actualTokens)
		return
	}
	if actualTokens <= 0 {
		actualTokens = t.tokens
	}
	if !t.lane.settleNeeded(actualTokens - t.tokens) {
		return
	}
	_, _ = t.lane.call(context.Background(), "settle", t.member, t.tokens, actualTokens, t.dayEnd)
}

// settleNeeded reports whether a settlement carries anything Redis does not know: an under-estimate
// to charge, headers that teach something, a 429 streak to end, or an adaptive RPM to raise. In the
// usual case (estimate not exceeded, headers confirming the known limits) it is skipped, so a
// request costs one round trip. A skipped settlement drops its uninformative headers.
func (l *Lane) settleNeeded(extra int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if extra > 0 || l.limited || l.v.src.RPM == ratelimit.SourceAdaptive {
		l.limited = false
		return true
	}
	if rl := l.pending; rl != nil {
		if informative(*rl, l.v) {
			return true
		}
		l.pending = nil
	}
	return false
}

// informative reports whether headers would change what v shows: a limit not yet learned or
// different, more usage than the window holds (someone else uses the key), or a per-day budget.
func informative(rl provider.RateLimits, v view) bool {
	if rl.HasRequests && rl.LimitRequests > 0 {
		if rl.RequestsPerDay {
			return true
		}
		if rl.LimitRequests != v.lim.RPM || v.src.RPM != ratelimit.SourceHeaders ||
			rl.LimitRequests-rl.RemainingRequests > v.winReqs {
			return true
		}
	}
	if rl.HasTokens && rl.LimitTokens > 0 {
		if rl.LimitTokens != v.lim.TPM || v.src.TPM != ratelimit.SourceHeaders ||
			rl.LimitTokens-rl.RemainingTokens > v.winTokens {
			return true
		}
	}
	return false
}

// RateLimited records a 429 for the ticket's request with its headers and Retry-After: every process
// sharing the lane pauses until Retry-After (or a doubling backoff from 1 s to 30 s), learns the
// advertised limits and, when the headers do not explain the rejection, lowers the shared RPM (AIMD).
func (t *Ticket) RateLimited(rl provider.RateLimits) {
	if !t.finish() {
		return
	}
	defer t.settled(true)
	if t.local != nil {
		t.local.RateLimited(rl)
		return
	}
	l := t.lane
	l.mu.Lock()
	l.pending = &rl // the 429's headers travel with the call
	l.limited = true
	l.mu.Unlock()
	q, _ := strconv.ParseInt(t.member, 10, 64)
	_, _ = l.call(context.Background(), "limited", t.tokens, q, rl.RetryAfter.Milliseconds())
}

// Cancel releases the reservation of a request that was never sent.
func (t *Ticket) Cancel() {
	if !t.finish() {
		return
	}
	defer t.settled(false)
	if t.local != nil {
		t.local.Cancel()
		return
	}
	t.release()
}

// Observe learns from a response's rate-limit headers. Nothing is sent now: the headers go with the
// lane's next call (normally the Settle that follows), so learning costs no round trip.
func (l *Lane) Observe(rl provider.RateLimits) {
	if loc := l.localLane(); loc != nil {
		loc.Observe(rl)
		return
	}
	l.mu.Lock()
	l.pending = &rl
	l.mu.Unlock()
}

// Pause stops admissions on the lane for d from now, in every process.
func (l *Lane) Pause(d time.Duration) {
	if loc := l.localLane(); loc != nil {
		loc.Pause(d)
		return
	}
	_, _ = l.call(context.Background(), "pause", d.Milliseconds())
}

// ExhaustDay marks the lane's daily budget as spent, in every process, until resetAt (the day
// period's end when zero).
func (l *Lane) ExhaustDay(resetAt time.Time) {
	if loc := l.localLane(); loc != nil {
		loc.ExhaustDay(resetAt)
		return
	}
	var d int64
	if !resetAt.IsZero() {
		d = max(resetAt.Sub(l.st.now()).Milliseconds(), 1)
	}
	_, _ = l.call(context.Background(), "exhaust", d)
}

// PublishBreaker tells every process that this lane's circuit breaker is open until until (closed
// when until is not after now).
func (l *Lane) PublishBreaker(until time.Time) {
	_, _ = l.call(context.Background(), "breaker", max(until.Sub(l.st.now()).Milliseconds(), 0))
}

// BreakerOpenUntil returns when the shared breaker state says the lane may be tried again (zero
// when it is closed), as the last reply showed it.
func (l *Lane) BreakerOpenUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.v.brkOpen.After(l.st.now()) {
		return l.v.brkOpen
	}
	return time.Time{}
}

// Processes returns how many processes used the lane in the last 15 s, as last seen.
func (l *Lane) Processes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.v.procs, 1)
}

// Delay estimates how long a request of tokens would wait if Wait were called now, from the state
// the last reply showed (no round trip); ratelimit.Never when it cannot be admitted today or at all.
func (l *Lane) Delay(tokens int) time.Duration {
	if loc := l.localLane(); loc != nil {
		return loc.Delay(tokens)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.v
	if (v.lim.TPM > 0 && tokens > v.lim.TPM) || (v.lim.TPD > 0 && tokens > v.lim.TPD) || v.dayExhausted ||
		(v.lim.RPD > 0 && v.dayReqs+1 > v.lim.RPD) || (v.lim.TPD > 0 && v.dayTokens+tokens > v.lim.TPD) {
		return ratelimit.Never
	}
	if v.at.IsZero() {
		return 0
	}
	elapsed := l.st.now().Sub(v.at)
	return max(v.pause-elapsed, v.tail-elapsed, 0)
}

// Snapshot returns the lane's state as the last reply showed it (local state while Redis is down).
func (l *Lane) Snapshot() ratelimit.State {
	if loc := l.localLane(); loc != nil {
		return loc.Snapshot()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.v
	s := ratelimit.State{
		Name: l.name, Limits: v.lim, Source: v.src,
		MinuteRequests: v.winReqs, MinuteTokens: v.winTokens, DayRequests: v.dayReqs, DayTokens: v.dayTokens,
		DayRemainingRequests: -1, DayRemainingTokens: -1, DayExhausted: v.dayExhausted,
		DayResetAt: v.at.Add(v.dayEnd), RateLimited: v.rateLimited, Waiting: l.waiting,
	}
	if v.lim.RPD > 0 {
		s.DayRemainingRequests = max(v.lim.RPD-v.dayReqs, 0)
	}
	if v.lim.TPD > 0 {
		s.DayRemainingTokens = max(v.lim.TPD-v.dayTokens, 0)
	}
	if s.DayRemainingRequests == 0 || s.DayRemainingTokens == 0 {
		s.DayExhausted = true
	}
	if v.pausedUntil.After(l.st.now()) {
		s.PausedUntil = v.pausedUntil
	}
	return s
}

func (l *Lane) localLane() *ratelimit.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.local
}

// goLocal starts the local limiter at this process's share of the last known limits: each limit
// divided by the processes seen on the lane, the daily ones applied to what was left of the day.
func (l *Lane) goLocal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.local != nil {
		return
	}
	l.local = ratelimit.New(l.name, shareOf(l.v, l.cfg), l.st.now)
	// Wake admissions sleeping on a shared slot: they keep it (it is counted), nothing to do.
}

// shareOf returns the local limits for one of v.procs processes (config when nothing was seen).
func shareOf(v view, cfg ratelimit.Limits) ratelimit.Limits {
	if v.at.IsZero() {
		return cfg
	}
	n := max(v.procs, 1)
	part := func(limit int) int {
		if limit <= 0 {
			return 0
		}
		return max(limit/n, 1)
	}
	out := ratelimit.Limits{RPM: part(v.lim.RPM), TPM: part(v.lim.TPM)}
	if v.lim.RPD > 0 {
		out.RPD = max((v.lim.RPD-v.dayReqs)/n, 1)
	}
	if v.lim.TPD > 0 {
		out.TPD = max((v.lim.TPD-v.dayTokens)/n, 1)
	}
	return out
}

// rejoin adds what the local limiter admitted in the last minute (and today) to the shared state,
// with the limits it knew, and hands the lane back to Redis.
func (l *Lane) rejoin(ctx context.Context) error {
	l.mu.Lock()
	loc, v := l.local, l.v
	l.mu.Unlock()
	var s ratelimit.State
	if loc != nil {
		s = loc.Snapshot()
	}
	pipe := l.st.rdb.Pipeline()
	l.register(ctx, pipe)
	cmd := l.script(ctx, pipe, "seed", []any{s.MinuteRequests, s.MinuteTokens, s.DayRequests, s.DayTokens,
		learned(v.lim.RPM, v.src.RPM), learned(v.lim.TPM, v.src.TPM), learned(v.lim.RPD, v.src.RPD),
		int(v.src.RPM), int(v.src.TPM), int(v.src.RPD)})
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	r, err := parseReply(cmd)
	if err != nil {
		return err
	}
	l.apply(r)
	l.mu.Lock()
	l.local = nil
	l.mu.Unlock()
	return nil
}

// learned returns a limit worth carrying into a Redis that lost it: one learned from headers or
// adapted, not a configured one (every process sends those anyway).
func learned(v int, src ratelimit.Source) int {
	if src == ratelimit.SourceHeaders || src == ratelimit.SourceAdaptive {
		return v
	}
	return 0
}
