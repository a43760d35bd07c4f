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
//   - Reservation.CancelAt restores nothing once the reservation's time has passed, but a request
//     cancelled then was never sent (the caller lost its turn). Its tokens are kept as a refund that
//     the next reservations take first, so a slot given back is not paid for twice.
//
// A bucket is not safe for concurrent use on its own; the Limiter's mutex guards it.
type bucket struct {
	lim       *rate.Limiter
	perMinute float64
	last      time.Time
	// refund holds the tokens of reservations cancelled after they came due; never more than the
	// bucket has room for, so the burst stays the burst.
	refund int
}

// hold is what one request took from a bucket: the limiter's reservations, one per burst-sized
// chunk with its size, and the tokens taken from the refund.
type hold struct {
	rs       []*rate.Reservation
	sizes    []int
	refunded int
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
	have := b.lim.TokensAt(t) + float64(b.refund)
	if have >= need {
		return t
	}
	secs := (need - have) / float64(b.lim.Limit())
	// Round up so the limiter's own float arithmetic agrees the tokens are there at the returned time.
	return t.Add(time.Duration(math.Ceil(secs*float64(time.Second))) + 1)
}

// reserve takes n tokens at t (which the caller obtained from readyAt), from the refund first, and
// returns what it took for cancelAt.
func (b *bucket) reserve(t time.Time, n int) hold {
	var h hold
	if n <= 0 {
		return h
	}
	h.refunded = min(n, b.refund)
	b.refund -= h.refunded
	n -= h.refunded
	if n == 0 {
		return h
	}
	t = b.at(t)
	b.last = t
	burst := b.lim.Burst()
	k := (n + burst - 1) / burst
	h.rs, h.sizes = make([]*rate.Reservation, 0, k), make([]int, 0, k)
	for n > 0 {
		c := min(n, burst)
		// ReserveN never fails for c <= burst; a delay here is debt owed by later requests.
		h.rs = append(h.rs, b.lim.ReserveN(t, c))
		h.sizes = append(h.sizes, c)
		n -= c
	}
	return h
}

// cancelAt gives back what h took, for a request that was never sent: the limiter restores the
// reservations that have not yet come due at now (newest first, so each restores as much as the
// limiter allows), and the refund gets the tokens of those that have, and those h took from it.
func (b *bucket) cancelAt(h hold, now time.Time) {
	restored := false
	back := h.refunded
	for i := len(h.rs) - 1; i >= 0; i-- {
		r := h.rs[i]
		switch {
		case !r.OK():
		case r.DelayFrom(now) > 0:
			r.CancelAt(now)
			restored = true
		default:
			back += h.sizes[i]
		}
	}
	if restored && b.last.After(now) {
		// CancelAt moved the limiter's clock back to now; follow it so later reservations may use
		// the restored tokens from now on instead of after the cancelled reservation's time.
		b.last = now
	}
	if back > 0 {
		// As a token bucket would: the tokens come back, but the bucket never holds more than its
		// burst (debt leaves room for all of them).
		room := float64(b.lim.Burst()) - max(b.lim.TokensAt(b.at(now)), 0)
		b.refund = min(b.refund+back, int(math.Floor(room)))
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
	b.refund = min(b.refund, b.lim.Burst())
}
