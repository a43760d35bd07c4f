package retry

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
)

var (
	serverErr = mk(TypeServerError)
	badReq    = mk(TypeBadRequest)
)

func defaultPolicy() Policy {
	return PolicyFrom(config.Retry{MaxAttempts: 6, BaseDelay: config.Duration(time.Second),
		MaxDelay: config.Duration(60 * time.Second), Jitter: 0.25})
}

func TestPolicyFrom(t *testing.T) {
	got := PolicyFrom(config.Retry{})
	want := Policy{MaxAttempts: DefaultMaxAttempts, Base: DefaultBase, Max: DefaultMax, Jitter: DefaultJitter}
	if got != want {
		t.Errorf("PolicyFrom(zero) = %+v, want %+v", got, want)
	}
	got = PolicyFrom(config.Retry{MaxAttempts: 3, BaseDelay: config.Duration(200 * time.Millisecond),
		MaxDelay: config.Duration(5 * time.Second), Jitter: 1.7})
	want = Policy{MaxAttempts: 3, Base: 200 * time.Millisecond, Max: 5 * time.Second, Jitter: 1}
	if got != want {
		t.Errorf("PolicyFrom = %+v, want %+v", got, want)
	}
}

func TestDelayExamples(t *testing.T) {
	p := Policy{MaxAttempts: 6, Base: time.Second, Max: 60 * time.Second, Jitter: 0.25}
	for _, tt := range []struct {
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{1, 0.5, time.Second},
		{2, 0.5, 2 * time.Second},
		{3, 0.5, 4 * time.Second},
		{7, 0.5, 60 * time.Second}, // 64s capped
		{1, 0, 750 * time.Millisecond},
		{3, 0, 3 * time.Second},
		{100, 0.5, 60 * time.Second},
		{math.MaxInt, 0.5, 60 * time.Second},
		{0, 0.5, time.Second},  // below 1 counts as 1
		{-5, 0.5, time.Second}, // below 1 counts as 1
		{1, math.NaN(), 750 * time.Millisecond},
	} {
		if got := p.Delay(tt.attempt, serverErr, tt.rnd); got != tt.want {
			t.Errorf("Delay(%d, rnd=%v) = %v, want %v", tt.attempt, tt.rnd, got, tt.want)
		}
	}
	if got := p.Delay(7, serverErr, 1); got <= 74*time.Second || got > 75*time.Second {
		t.Errorf("Delay(7, rnd=1) = %v, want just under 75s", got)
	}
	huge := Policy{Base: time.Hour, Max: math.MaxInt64, Jitter: 0.5}
	if got := huge.Delay(80, serverErr, 0.999); got <= 0 {
		t.Errorf("no overflow expected, got %v", got)
	}
	if got := (Policy{}).Delay(3, serverErr, 0.7); got != 0 {
		t.Errorf("zero Policy Delay = %v, want 0", got)
	}
}

// TestDelayBoundsProperty checks thousands of random policies, attempts and random numbers against the
// documented envelope [d·(1−j), d·(1+j)] with d = min(base·2^(n−1), cap).
func TestDelayBoundsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		p := Policy{
			MaxAttempts: 1 + r.IntN(10),
			Base:        time.Duration(1 + r.Int64N(int64(5*time.Second))),
			Jitter:      r.Float64(),
		}
		p.Max = p.Base + time.Duration(r.Int64N(int64(5*time.Minute)))
		n := 1 + r.IntN(40)
		rnd := r.Float64()
		got := p.Delay(n, serverErr, rnd)

		exp := float64(p.Base) * math.Pow(2, float64(n-1))
		d := math.Min(exp, float64(p.Max))
		lo, hi := d*(1-p.Jitter), d*(1+p.Jitter)
		if float64(got) < lo-1 || float64(got) > hi+1 {
			t.Fatalf("case %d: %+v Delay(%d, %v) = %v outside [%v, %v]", i, p, n, rnd, got,
				time.Duration(lo), time.Duration(hi))
		}
		if got > time.Duration(float64(p.Max)*(1+p.Jitter))+1 {
			t.Fatalf("case %d: %v exceeds cap·(1+j)", i, got)
		}
	}
}

// TestJitterSpansRange checks that jitter is not degenerate: over many draws the delays fill the whole
// ±Jitter band, with both tails and the middle populated and the mean near the centre.
func TestJitterSpansRange(t *testing.T) {
	p := defaultPolicy()
	r := rand.New(rand.NewPCG(3, 4))
	const n = 10000
	for _, attempt := range []int{1, 3, 9} {
		d := float64(p.capped(attempt))
		var buckets [10]int
		sum := 0.0
		for range n {
			got := float64(p.Delay(attempt, serverErr, r.Float64()))
			frac := (got/d - (1 - p.Jitter)) / (2 * p.Jitter) // 0..1 across the band
			b := min(int(frac*10), 9)
			if b < 0 {
				t.Fatalf("attempt %d: delay %v below the band", attempt, time.Duration(got))
			}
			buckets[b]++
			sum += got
		}
		for b, c := range buckets {
			if c < n/10*7/10 || c > n/10*13/10 {
				t.Errorf("attempt %d: bucket %d holds %d of %d draws; jitter is not uniform over the band: %v", attempt, b, c, n, buckets)
			}
		}
		if mean := sum / n; math.Abs(mean/d-1) > 0.02 {
			t.Errorf("attempt %d: mean delay %v, want ≈ %v", attempt, time.Duration(mean), time.Duration(d))
		}
	}
}

// TestMediansMonotone checks that the median delay never decreases with the attempt number and stops
// growing at the cap.
func TestMediansMonotone(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		p := Policy{Base: time.Duration(1 + r.Int64N(int64(2*time.Second))), Jitter: r.Float64()}
		p.Max = p.Base * time.Duration(1+r.IntN(200))
		prev := time.Duration(0)
		for attempt := 1; attempt <= 20; attempt++ {
			ds := make([]time.Duration, 301)
			for i := range ds {
				ds[i] = p.Delay(attempt, serverErr, r.Float64())
			}
			slices.Sort(ds)
			med := ds[len(ds)/2]
			// Medians of random samples wobble by the jitter; compare against the band's centre.
			centre := p.capped(attempt)
			if float64(med) < float64(centre)*(1-p.Jitter) || float64(med) > float64(centre)*(1+p.Jitter) {
				t.Fatalf("%+v attempt %d: median %v outside band around %v", p, attempt, med, centre)
			}
			if centre < prev {
				t.Fatalf("%+v attempt %d: centre %v below previous %v", p, attempt, centre, prev)
			}
			prev = centre
			// The median with rnd = 0.5 exactly is the centre, and is monotone.
			if got := p.Delay(attempt, serverErr, 0.5); got != centre {
				t.Fatalf("Delay(%d, 0.5) = %v, want centre %v", attempt, got, centre)
			}
		}
		if prev != p.Max {
			t.Fatalf("%+v: delays end at %v, want the cap %v", p, prev, p.Max)
		}
	}
}

// TestRetryAfterPrecedence checks that a positive Retry-After is never undercut, adds at most the
// documented jitter, and is capped at MaxRetryAfter, for random policies and attempts.
func TestRetryAfterPrecedence(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	spread := map[bool]int{}
	for i := range 20000 {
		p := Policy{MaxAttempts: 6, Base: time.Duration(1 + r.Int64N(int64(3*time.Second))), Jitter: r.Float64()}
		p.Max = p.Base * 60
		ra := time.Duration(1 + r.Int64N(int64(15*time.Minute)))
		c := mk(TypeRateLimit)
		c.RetryAfter = ra
		attempt := 1 + r.IntN(30)
		rnd := r.Float64()
		got := p.Delay(attempt, c, rnd)
		span := min(ra, max(p.Base, time.Second))
		hi := ra + time.Duration(p.Jitter*float64(span))
		switch {
		case ra >= MaxRetryAfter:
			if got != MaxRetryAfter {
				t.Fatalf("case %d: RetryAfter %v: Delay = %v, want the cap %v", i, ra, got, MaxRetryAfter)
			}
		case got < ra:
			t.Fatalf("case %d: Delay %v undercuts RetryAfter %v", i, got, ra)
		case got > hi || got > MaxRetryAfter:
			t.Fatalf("case %d: Delay %v above RetryAfter %v + jitter %v", i, got, ra, hi-ra)
		}
		if ra < MaxRetryAfter-5*time.Second {
			spread[got > ra]++
		}
	}
	if spread[true] < 1000 || spread[false] > spread[true]/100+10 {
		t.Errorf("Retry-After jitter barely used: above=%d equal=%d", spread[true], spread[false])
	}
	// A Retry-After shorter than the backoff still wins: the server knows best.
	p := defaultPolicy()
	c := mk(TypeServerError)
	c.RetryAfter = 100 * time.Millisecond
	if got := p.Delay(6, c, 0.5); got < 100*time.Millisecond || got > 125*time.Millisecond {
		t.Errorf("short Retry-After: Delay = %v, want in [100ms, 125ms]", got)
	}
}

func TestShouldRetry(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 5000 {
		p := Policy{MaxAttempts: r.IntN(12) - 1}
		attempt := 1 + r.IntN(15)
		c := mk(allTypes[r.IntN(len(allTypes))])
		want := c.Retryable && attempt < max(p.MaxAttempts, 1)
		if got := p.ShouldRetry(attempt, c); got != want {
			t.Fatalf("%+v ShouldRetry(%d, %s) = %v, want %v", p, attempt, c.Type, got, want)
		}
	}
	// Simulate the engine loop: total attempts never exceed MaxAttempts.
	for maxAttempts := -1; maxAttempts <= 8; maxAttempts++ {
		p := Policy{MaxAttempts: maxAttempts}
		attempts := 1
		for p.ShouldRetry(attempts, serverErr) {
			attempts++
		}
		if want := max(maxAttempts, 1); attempts != want {
			t.Errorf("MaxAttempts %d: made %d attempts, want %d", maxAttempts, attempts, want)
		}
	}
	if defaultPolicy().ShouldRetry(1, badReq) {
		t.Error("bad_request must never be retried")
	}
	if defaultPolicy().ShouldRetry(1, mk(TypeNotFound)) {
		t.Error("not_found must not be retried on the same lane")
	}
}

func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Wait(context.Background(), 1500*time.Millisecond); err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if got := time.Since(start); got != 1500*time.Millisecond {
			t.Errorf("waited %v, want 1.5s", got)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		go func() {
			time.Sleep(200 * time.Millisecond)
			cancel()
		}()
		err := Wait(ctx, time.Hour)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		if got := time.Since(start); got != 200*time.Millisecond {
			t.Errorf("returned after %v, want 200ms", got)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := Wait(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want DeadlineExceeded", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Wait(context.Background(), 0); err != nil {
			t.Errorf("Wait(0) = %v", err)
		}
		if err := Wait(context.Background(), -time.Second); err != nil {
			t.Errorf("Wait(<0) = %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := Wait(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait(canceled, 0) = %v", err)
		}
		if err := Wait(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait(canceled, 1h) = %v", err)
		}
		if time.Since(start) != 0 {
			t.Errorf("immediate cases took %v", time.Since(start))
		}
	})
}
