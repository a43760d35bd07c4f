package ratelimit

import (
	"math"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// Observe learns from the rate-limit headers of a response (success or error; call it for every
// response that has them). An advertised limit that differs from the effective one replaces it
// (request headers set RPM, or RPD when they describe a daily budget; token headers set TPM), and
// usage the provider reports beyond what the lane's log holds is logged as phantom usage until the
// provider's reset time, so the lane slows down to what the provider will accept. Reset times teach
// the enforcement window when none is configured. Zero fields of rl are ignored.
func (l *Limiter) Observe(rl provider.RateLimits) { l.ObserveAt(l.now(), rl) }

// ObserveAt is Observe at the explicit time now.
func (l *Limiter) ObserveAt(now time.Time, rl provider.RateLimits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observeLocked(now, rl)
}

func (l *Limiter) observeLocked(now time.Time, rl provider.RateLimits) {
	obs := observedAt(now, rl)
	l.rollDayLocked(now)
	l.win.prune(now)
	perMinuteRequests := rl.HasRequests && rl.LimitRequests > 0 && !rl.RequestsPerDay
	if perMinuteRequests && rl.ResetRequests > 0 {
		l.learnResetLocked(now, obs, rl.ResetRequests)
	}
	if rl.HasTokens && rl.LimitTokens > 0 && rl.ResetTokens > 0 {
		l.learnResetLocked(now, obs, rl.ResetTokens)
	}
	if rl.HasRequests && rl.LimitRequests > 0 {
		if rl.RequestsPerDay {
			used := max(rl.LimitRequests-rl.RemainingRequests, 0)
			if l.eff.RPD != rl.LimitRequests || l.src.RPD != SourceHeaders {
				l.setLimitLocked(now, kindRPD, rl.LimitRequests, SourceHeaders)
			}
			if rl.ResetRequests > 0 {
				if end := obs.Add(rl.ResetRequests); end.After(now) {
					l.dayEnd = end
				}
			}
			l.dayReqs = max(l.dayReqs, used)
		} else {
			limit := l.perMinuteLocked(rl.LimitRequests, l.cfg.RPM)
			if l.eff.RPM != limit || l.src.RPM != SourceHeaders {
				l.setLimitLocked(now, kindRPM, limit, SourceHeaders)
			}
			if rl.RemainingRequests <= 0 && rl.ResetRequests > 0 {
				// Nothing left until the reset, whatever our log says (another client, an earlier run).
				l.pauseUntilLocked(now, obs.Add(min(rl.ResetRequests, l.eff.Window)))
			}
			if used := l.inWindowLocked(rl.LimitRequests - rl.RemainingRequests); used > 0 {
				if ours, _ := l.win.sumUntil(obs); used > ours {
					l.addPhantomLocked(now, obs, rl.ResetRequests, used-ours, 0)
				}
			}
		}
	}
	if rl.HasTokens && rl.LimitTokens > 0 {
		limit := l.perMinuteLocked(rl.LimitTokens, l.cfg.TPM)
		if l.eff.TPM != limit || l.src.TPM != SourceHeaders {
			l.setLimitLocked(now, kindTPM, limit, SourceHeaders)
		}
		if used := l.inWindowLocked(rl.LimitTokens - rl.RemainingTokens); used > 0 {
			if _, ours := l.win.sumUntil(obs); used > ours {
				l.addPhantomLocked(now, obs, rl.ResetTokens, 0, used-ours)
			}
		}
	}
}

// windows a provider may enforce over; a reset time is rounded up to one of them.
var windows = [...]time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	15 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute}

// learnResetLocked learns the enforcement from a reset time r read at obs (the time until the
// provider's oldest counted admission leaves its window): the window W is at least r, and at most r
// plus the age of the lane's oldest admission still logged (the provider cannot count anything
// older of ours). When both ends round up to the same window, that is the window: the first answers
// of a lane tell it exactly; later ones, with older usage in the window, only when it is clear.
// Reset times of a second or less mean per-second enforcement: one second's share at a time. A
// configured window is never overridden.
func (l *Limiter) learnResetLocked(now, obs time.Time, r time.Duration) {
	if l.src.Window == SourceConfig || r <= l.maxReset {
		return
	}
	oldest := obs
	for _, e := range l.win.entries {
		if !e.phantom && e.reqs > 0 {
			oldest = e.first
			break
		}
	}
	w := windowOf(r)
	if hi := windowOf(r + max(obs.Sub(oldest), 0)); hi != w {
		return // older usage of ours may be what resets: the window is not clear from this one
	}
	l.maxReset = r
	l.src.Window = SourceLearned
	if w <= defaultQuantum {
		l.setWindowLocked(now, providerWindow)
		if l.src.Quantum != SourceConfig {
			l.src.Quantum = SourceLearned
			l.setQuantumLocked(now, w)
		}
		return
	}
	l.setWindowLocked(now, w)
	if l.src.Quantum != SourceConfig && !l.quantumFrom429 {
		l.src.Quantum = SourceLearned
		l.setQuantumLocked(now, 0) // a full window admits its share at once
	}
}

// windowOf rounds a reset time up to the window it belongs to: the first of windows it does not
// exceed by more than a tenth plus half a second (reset instants rounded up to the second, as
// Anthropic's, overshoot), a minute at most.
func windowOf(r time.Duration) time.Duration {
	for _, c := range windows {
		if r <= c+c/10+time.Second/2 {
			return c
		}
	}
	return providerWindow
}

// perMinuteLocked reads a header's limit figure as a per-minute limit. Over a window other than a
// minute a header may state the window's own figure: the reading closer to the configured
// per-minute limit cfg wins (once decided, for the lane's life), so a 10 s window whose headers say
// 600 keeps a configured 3,600 RPM instead of being read as 600 RPM; without a configured limit
// the figure is per minute, as OpenAI and Anthropic state theirs.
func (l *Limiter) perMinuteLocked(figure, cfg int) int {
	w := l.eff.Window
	if w <= 0 || w == providerWindow {
		return figure
	}
	if !l.headerScaleKnown && cfg > 0 {
		asWindow := float64(figure) * float64(providerWindow) / float64(w)
		l.perWindow = math.Abs(math.Log(asWindow/float64(cfg))) < math.Abs(math.Log(float64(figure)/float64(cfg)))
		l.headerScaleKnown = true
	}
	if l.perWindow {
		return int(int64(figure) * int64(providerWindow) / int64(w))
	}
	return figure
}

// inWindowLocked converts a count stated in the headers' figures (limit minus remaining) to the
// enforcement window's units, the units of the lane's log.
func (l *Limiter) inWindowLocked(n int) int {
	w := l.eff.Window
	if n <= 0 || l.perWindow || w <= 0 || w == providerWindow {
		return max(n, 0)
	}
	return int(int64(n) * int64(w) / int64(providerWindow))
}

// observedAt is when the headers were read, never later than now.
func observedAt(now time.Time, rl provider.RateLimits) time.Time {
	if rl.ObservedAt.IsZero() || rl.ObservedAt.After(now) {
		return now
	}
	return rl.ObservedAt
}

// addPhantomLocked logs usage the provider counted but the lane did not send, so that it leaves the
// window when the provider says its budget is restored (obs + reset; a full window when unsaid).
func (l *Limiter) addPhantomLocked(now, obs time.Time, reset time.Duration, reqs, tokens int) {
	if reset <= 0 || reset > l.eff.Window {
		reset = l.eff.Window
	}
	at := obs.Add(reset).Add(-l.win.span)
	if !at.Add(l.win.span).After(now) {
		return // already restored
	}
	l.win.insertPhantom(at, reqs, tokens)
	// Slots already handed to waiting requests did not count this usage.
	l.invalidateLocked(now, func(*Ticket) bool { return true })
}

// RateLimited records that the provider answered the ticket's request with 429, with the headers
// and Retry-After in rl, and finishes the ticket (later calls are no-ops). It counts the 429 and
// learns from the headers (Observe). Then:
//   - A 429 the headers explain (no requests or not enough tokens remaining) pauses the lane until
//     Retry-After, or else its reset time, or else a backoff of 1 s doubling per consecutive 429
//     (at most 30 s).
//   - A 429 that arrives while the headers show budget left says the provider enforces a sub-window:
//     unless one is configured, the lane paces one second's share at a time from now on.
//   - A 429 nothing explains does not pause the lane or lower its rate by itself: the request is
//     retried after its Retry-After. Only when rejections rise with the rate — such 429s are most
//     of the lane's recent answers, or the lane already adapting has gone above the rate the
//     provider accepted at its last decrease — does the RPM drop, to what the provider accepted over
//     the last minute and never below, and the lane pauses for at most the Retry-After.
//
// The request stays counted in the window: a provider may count rejected requests too.
func (t *Ticket) RateLimited(rl provider.RateLimits) {
	l := t.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.state != stateSent {
		return
	}
	t.state = stateDone
	l.outstanding--
	now := l.now()
	t.ent.limited++
	l.n429++
	l.consec429++
	l.observeLocked(now, rl)
	l.answeredLocked()
	obs := observedAt(now, rl)

	reqsLeft := rl.HasRequests && rl.LimitRequests > 0 && !rl.RequestsPerDay && l.inWindowLocked(rl.RemainingRequests) >= 1
	tokensLeft := rl.HasTokens && rl.LimitTokens > 0 && l.inWindowLocked(rl.RemainingTokens) >= t.tokens
	headers := (rl.HasRequests && rl.LimitRequests > 0) || (rl.HasTokens && rl.LimitTokens > 0)
	explained := headers && !((reqsLeft || !rl.HasRequests) && (tokensLeft || !rl.HasTokens))
	if explained {
		d := rl.RetryAfter
		if d <= 0 {
			switch {
			case rl.HasRequests && !reqsLeft && rl.ResetRequests > 0:
				d = rl.ResetRequests
			case rl.HasTokens && !tokensLeft && rl.ResetTokens > 0:
				d = rl.ResetTokens
			default:
				d = min(minBackoff<<min(l.consec429-1, 16), maxBackoff)
			}
		}
		l.pauseUntilLocked(now, obs.Add(d))
		return
	}
	if headers && l.src.Quantum != SourceConfig && l.eff.Quantum == 0 {
		// Budget left, yet rejected: a sub-window is enforced (or the 429 was random; pacing one
		// second's share costs a finite job its burst, never throughput).
		l.quantumFrom429 = true
		l.src.Quantum = SourceLearned
		l.setQuantumLocked(now, defaultQuantum)
	}
	l.noteAnswerLocked(true)
	// Only a request sent after the last decrease reflects the decreased rate; the others were part of
	// the burst that caused it.
	// Rejections rise with the rate when most recent answers are such 429s, or when the lane, already
	// adapting, has risen above the rate the provider accepted at the last decrease.
	rising := l.limitLikeLocked() || (l.adaptive && l.rpmF > l.recoverTo)
	if rising && !t.at.Before(l.lastDecrease) {
		l.decreaseLocked(now, t)
		d := min(minBackoff<<min(l.consec429-1, 16), maxBackoff)
		if rl.RetryAfter > 0 {
			d = rl.RetryAfter
		}
		l.pauseUntilLocked(now, obs.Add(d))
	}
}

// noteAnswerLocked records one answer for the rejection share: unexplained is a 429 nothing explains.
func (l *Limiter) noteAnswerLocked(unexplained bool) {
	if len(l.recent) < recentAnswers {
		l.recent = append(l.recent, unexplained)
		return
	}
	l.recent[l.recentNext] = unexplained
	l.recentNext = (l.recentNext + 1) % recentAnswers
}

// limitLikeLocked reports whether unexplained 429s are most of the recent answers: a limit being
// hit, not the random rejections of a busy provider (which stay a steady share whatever the rate).
func (l *Limiter) limitLikeLocked() bool {
	if len(l.recent) < recentAnswers/2 {
		return false
	}
	n := 0
	for _, r := range l.recent {
		if r {
			n++
		}
	}
	return float64(n) > limitShare*float64(len(l.recent))
}

// decreaseLocked lowers the RPM after t was rejected by a limit nothing states: to the requests the
// provider accepted in the minute before t (the best measurement of the real limit), or just below
// it (overshootStep) when the lane had crept above the level of its last decrease.
func (l *Limiter) decreaseLocked(now time.Time, t *Ticket) {
	cur := float64(l.eff.RPM)
	if l.adaptive {
		cur = l.rpmF
	}
	// What the provider had accepted when it rejected t: everything sent before t in the last minute
	// that was not rejected too. Answers still in flight count as accepted, because the first 429 to
	// arrive is for the first request rejected, so those before it were accepted.
	accepted := float64(l.win.acceptedIn(t.at.Add(-providerWindow), t.at))
	if cur <= 0 {
		cur = float64(l.win.reqs) // no limit known: what we sent in the last window was too much
	}
	next := max(min(cur, accepted), 1)
	if !l.limitLikeLocked() {
		// An overshoot above the level accepted before: the measurement counts answers still in
		// flight as accepted, so step just below it.
		next = max(min(cur, accepted)*overshootStep, 1)
	}
	if !l.adaptive {
		l.adaptiveCap = l.eff.RPM
		l.adaptive = true
	}
	l.recoverTo = next
	l.rpmF = next
	l.lastDecrease = now
	l.recent, l.recentNext = l.recent[:0], 0 // measure the share again at the new rate
	l.setLimitLocked(now, kindRPM, int(next), SourceAdaptive)
}

// increaseLocked is the increase, one step per request answered without a 429: back quickly to
// the rate the provider accepted before the last decrease, then slowly beyond it.
func (l *Limiter) increaseLocked(now time.Time) {
	if gap := l.recoverTo - l.rpmF; gap > 0 {
		l.rpmF += gap * min(recovery/l.rpmF, 0.5)
	}
	l.rpmF += aiStep
	if l.adaptiveCap > 0 && l.rpmF > float64(l.adaptiveCap) {
		l.rpmF = float64(l.adaptiveCap)
	}
	l.setLimitLocked(now, kindRPM, int(l.rpmF), SourceAdaptive)
}
