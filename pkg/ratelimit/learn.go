package ratelimit

import (
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// Observe learns from the rate-limit headers of a response (success or error; call it for every
// response that has them). An advertised limit that differs from the effective one replaces it
// (request headers set RPM, or RPD when they describe a daily budget; token headers set TPM), and
// usage the provider reports beyond what the lane's log holds is logged as phantom usage until the
// provider's reset time, so the lane slows down to what the provider will accept. Zero fields of rl
// are ignored.
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
	if rl.HasRequests && rl.LimitRequests > 0 {
		used := max(rl.LimitRequests-rl.RemainingRequests, 0)
		if rl.RequestsPerDay {
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
			if l.eff.RPM != rl.LimitRequests || l.src.RPM != SourceHeaders {
				l.setLimitLocked(now, kindRPM, rl.LimitRequests, SourceHeaders)
			}
			if ours, _ := l.win.sumUntil(obs); used > ours {
				l.addPhantomLocked(now, obs, rl.ResetRequests, used-ours, 0)
			}
		}
	}
	if rl.HasTokens && rl.LimitTokens > 0 {
		if l.eff.TPM != rl.LimitTokens || l.src.TPM != SourceHeaders {
			l.setLimitLocked(now, kindTPM, rl.LimitTokens, SourceHeaders)
		}
		used := max(rl.LimitTokens-rl.RemainingTokens, 0)
		if _, ours := l.win.sumUntil(obs); used > ours {
			l.addPhantomLocked(now, obs, rl.ResetTokens, 0, used-ours)
		}
	}
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
	if reset <= 0 || reset > providerWindow {
		reset = providerWindow
	}
	at := obs.Add(reset).Add(-logSpan)
	if !at.Add(logSpan).After(now) {
		return // already restored
	}
	l.win.insertPhantom(at, reqs, tokens)
	// Slots already handed to waiting requests did not count this usage.
	l.invalidateLocked(now, func(*Ticket) bool { return true })
}

// RateLimited records that the provider answered the ticket's request with 429, with the headers
// and Retry-After in rl. It counts the 429, learns from the headers (Observe), pauses the lane until
// Retry-After (or a backoff of 1 s doubling per consecutive 429, at most 30 s, when there is none) and,
// when the headers do not explain the rejection, decreases the adaptive RPM (see the package doc).
// The request stays counted in the window: a provider may count rejected requests too. Like Settle
// and Cancel it finishes the ticket; later calls are no-ops.
func (t *Ticket) RateLimited(rl provider.RateLimits) {
	l := t.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.state != stateSent {
		return
	}
	t.state = stateDone
	now := l.now()
	t.ent.limited++
	l.n429++
	l.consec429++
	l.observeLocked(now, rl)

	d := rl.RetryAfter
	if d <= 0 {
		d = min(minBackoff<<min(l.consec429-1, 16), maxBackoff)
	}
	l.pauseUntilLocked(now, observedAt(now, rl).Add(d))

	explained := (rl.HasRequests && rl.LimitRequests > 0 && rl.RemainingRequests <= 0) ||
		(rl.HasTokens && rl.LimitTokens > 0 && rl.RemainingTokens < t.tokens)
	// Only a request sent after the last decrease reflects the decreased rate; the others were part of
	// the burst that caused it.
	if !explained && !t.at.Before(l.lastDecrease) {
		l.decreaseLocked(now, t)
	}
}

// decreaseLocked is AIMD's multiplicative decrease of the RPM after t was rejected.
func (l *Limiter) decreaseLocked(now time.Time, t *Ticket) {
	cur := float64(l.eff.RPM)
	if l.adaptive {
		cur = l.rpmF
	}
	if cur <= 0 {
		cur = float64(l.win.reqs) // no limit known: what we sent in the last window was too much
	}
	// What the provider had accepted in its window when it rejected t: everything sent before t in the
	// last minute that was not rejected too. Answers still in flight count as accepted, because the
	// first 429 to arrive is for the first request rejected, so those before it were accepted.
	accepted := float64(l.win.acceptedIn(t.at.Add(-providerWindow), t.at))
	next := max(cur*mdFloor, min(cur, accepted)*mdMeasured, 1)
	if !l.adaptive {
		l.adaptiveCap = l.eff.RPM
		l.adaptive = true
	}
	l.recoverTo = min(cur, accepted)
	l.rpmF = next
	l.lastDecrease = now
	l.setLimitLocked(now, kindRPM, int(next), SourceAdaptive)
}

// increaseLocked is AIMD's increase, one step per request answered without a 429: back quickly to
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
