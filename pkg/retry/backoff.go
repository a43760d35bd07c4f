package retry

import (
	"context"
	"math"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
)

// Defaults applied by PolicyFrom to zero fields, matching providers.yaml's documented defaults.
const (
	DefaultMaxAttempts = 6
	DefaultBase        = time.Second
	DefaultMax         = 60 * time.Second
	DefaultJitter      = 0.25
)

// MaxRetryAfter caps how long a server's Retry-After can make one wait last. A longer request
// (Gemini's daily quota may ask for hours) is better served by failing over, which is the engine's
// call; Delay never returns more than this.
const MaxRetryAfter = 10 * time.Minute

// Policy is a retry and backoff policy. The zero Policy makes one attempt and never waits.
type Policy struct {
	MaxAttempts int           // total attempts per request on one lane, the first included; < 1 means 1
	Base        time.Duration // delay after the first failure
	Max         time.Duration // cap of the exponential delay before jitter; < Base means Base
	Jitter      float64       // ± fraction applied to the delay, clamped to [0, 1]
}

// RateLimitFactor multiplies MaxAttempts for 429s: a rate limit is the lane's state, not the
// prompt's fault, so it has its own, larger allowance.
const RateLimitFactor = 4

// RateLimitAttempts is how many 429s a prompt may receive before it fails: RateLimitFactor times
// MaxAttempts.
func (p Policy) RateLimitAttempts() int { return RateLimitFactor * max(p.MaxAttempts, 1) }

// PolicyFrom builds a Policy from the config, filling zero fields with the Default* values (the
// loader already does so for files; this covers hand-built configs) and clamping Jitter to [0, 1].
func PolicyFrom(r config.Retry) Policy {
	p := Policy{MaxAttempts: r.MaxAttempts, Base: r.BaseDelay.D(), Max: r.MaxDelay.D(), Jitter: r.Jitter}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Base <= 0 {
		p.Base = DefaultBase
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Jitter == 0 {
		p.Jitter = DefaultJitter
	}
	p.Jitter = clamp01(p.Jitter)
	return p
}

// ShouldRetry reports whether a request that has failed attempt times on this lane (1-based), the
// last time with class c, may be tried again on the same lane: c is Retryable and
// fewer than MaxAttempts attempts have been made. Rate limits have their own allowance
// (RateLimitAttempts); Next applies both.
func (p Policy) ShouldRetry(attempt int, c Class) bool {
	return c.Retryable && attempt < max(p.MaxAttempts, 1)
}

// Delay returns how long to wait after the attempt-th failure (1-based; values below 1 count as 1)
// whose class is c, given a uniform random number rnd in [0, 1) (clamped into it). It is a pure
// function: the caller owns the random source.
//
// Without a Retry-After the delay is min(Base·2^(attempt-1), Max) · (1 + Jitter·(2·rnd−1)), so it
// lies in [d·(1−Jitter), d·(1+Jitter)] for the capped exponential d. A positive c.RetryAfter takes
// precedence: the delay is at least RetryAfter, plus up to Jitter·min(RetryAfter, max(Base, 1s))
// so that workers told the same Retry-After do not return in lockstep, and at most MaxRetryAfter.
//
// Hand-written rather than backoff/v5's ExponentialBackOff, which keeps mutable state, draws from
// its own random source, stops after a default 15-minute MaxElapsedTime, and has a RetryAfterError
// that does not wrap its cause (DESIGN §7).
func (p Policy) Delay(attempt int, c Class, rnd float64) time.Duration {
	rnd = clampUnit(rnd)
	j := clamp01(p.Jitter)
	if c.RetryAfter > 0 {
		if c.RetryAfter >= MaxRetryAfter {
			return MaxRetryAfter
		}
		span := min(c.RetryAfter, max(p.Base, time.Second))
		d := c.RetryAfter + time.Duration(j*rnd*float64(span))
		return min(d, MaxRetryAfter)
	}
	f := float64(p.capped(attempt)) * (1 + j*(2*rnd-1))
	if f >= float64(math.MaxInt64) {
		return math.MaxInt64
	}
	return time.Duration(f)
}

// capped returns min(Base·2^(attempt-1), Max) without overflowing.
func (p Policy) capped(attempt int) time.Duration {
	base := max(p.Base, 0)
	ceil := max(p.Max, base)
	d := base
	for i := 1; i < attempt && d < ceil; i++ {
		if d > ceil/2 {
			return ceil
		}
		d *= 2
	}
	return min(d, ceil)
}

// clamp01 clamps x to [0, 1]; NaN becomes 0.
func clamp01(x float64) float64 {
	if !(x > 0) {
		return 0
	}
	return min(x, 1)
}

// clampUnit clamps x to [0, 1); NaN becomes 0.
func clampUnit(x float64) float64 {
	if !(x > 0) {
		return 0
	}
	if x >= 1 {
		return 1 - 1.0/(1<<53)
	}
	return x
}

// Wait blocks for d or until ctx is done, whichever comes first. It returns nil after a full wait
// and ctx.Err() otherwise; a d ≤ 0 returns ctx.Err() at once (nil for a live context). It uses a
// timer, never time.Sleep, and releases the timer on return.
func Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
