package ratelimit

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// bucket wraps a rate.Limiter that paces one per-minute limit (requests or tokens). It hides three
// measured quirks of x/time/rate (DESIGN §7):
//   - ReserveN refuses n > burst, so large requests are reserved in burst-sized chunks; the chunks
//     after the first are debt that delays later requests, which keeps the average rate exact.
//   - The limiter mis-accounts when called with a time earlier than its previous call (it credits the
//     same interval twice), so every call goes through last, the latest time it has been given.
//   - An over-estimate cannot be refunded and an under-estimate is charged later as debt (Settle).
//
// A bucket is not safe for concurrent use on its own; the Lane's mutex guards it.
type bucket struct {
	lim       *rate.Limiter
	perMinute float64
	last      time.Time
}

// newBucket returns a full bucket for a per-minute limit. The rate is spread over logSpan (60 s plus a
// guard) so that pacing alone stays under the limit even when requests reach the provider with
// jitter, and the burst is about one second's worth: the bucket starts full, and a provider counting
// in a sliding window would reject a larger opening burst on top of a full minute of paced traffic.
func newBucket(perMinute float64, t time.Time) *bucket {
	return &bucket{
		lim:       rate.NewLimiter(limitOf(perMinute), burstOf(perMinute)),
		perMinute: perMinute,
		last:      t,
	}
}

func limitOf(perMinute float64) rate.Limit {
	return rate.Limit(perMinute / logSpan.Seconds())
}

func burstOf(perMinute float64) int {
	return max(1, int(math.Ceil(perMinute/60)))
}

// at returns t, or the latest time the limiter has seen when t is earlier.
func (b *bucket) at(t time.Time) time.Time {
	if t.Before(b.last) {
		return b.last
	}
	return t
}

// readyAt returns the earliest time at or after t when a request of n may start: when the bucket
// holds n tokens, or, for n above the burst, when it is full (the rest becomes debt).
func (b *bucket) readyAt(t time.Time, n int) time.Time {
	t = b.at(t)
	if n <= 0 {
		return t
	}
	need := float64(min(n, b.lim.Burst()))
	have := b.lim.TokensAt(t)
	if have >= need {
		return t
	}
	secs := (need - have) / float64(b.lim.Limit())
	// Round up so the limiter's own float arithmetic agrees the tokens are there at the returned time.
	return t.Add(time.Duration(math.Ceil(secs*float64(time.Second))) + 1)
}

// reserve takes n tokens at t (which the caller obtained from readyAt) and returns the reservations,
// one per burst-sized chunk, for cancelAt.
func (b *bucket) reserve(t time.Time, n int) []*rate.Reservation {
	if n <= 0 {
		return nil
	}
	t = b.at(t)
	b.last = t
	burst := b.lim.Burst()
	rs := make([]*rate.Reservation, 0, (n+burst-1)/burst)
	for n > 0 {
		c := min(n, burst)
		// ReserveN never fails for c <= burst; a delay here is debt owed by later requests.
		rs = append(rs, b.lim.ReserveN(t, c))
		n -= c
	}
	return rs
}

// cancelAt returns the tokens of reservations that have not yet come due at now, newest first so
// each cancellation restores as much as the limiter allows.
func (b *bucket) cancelAt(rs []*rate.Reservation, now time.Time) {
	restored := false
	for i := len(rs) - 1; i >= 0; i-- {
		if r := rs[i]; r.OK() && r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			restored = true
		}
	}
	if restored && b.last.After(now) {
		// CancelAt moved the limiter's clock back to now; follow it so later reservations may use
		// the restored tokens from now on instead of after the cancelled reservation's time.
		b.last = now
	}
}

// setLimit changes the per-minute limit at t, keeping the tokens (or debt) accumulated so far.
func (b *bucket) setLimit(t time.Time, perMinute float64) {
	if perMinute == b.perMinute {
		return
	}
	t = b.at(t)
	b.last = t
	b.perMinute = perMinute
	b.lim.SetLimitAt(t, limitOf(perMinute))
	b.lim.SetBurstAt(t, burstOf(perMinute))
}
