package progress

import (
	"math/rand/v2"
	"testing"
	"time"
)

func within(t *testing.T, what string, got, want time.Duration, rel float64) {
	t.Helper()
	if diff := float64(got - want); diff > rel*float64(want) || -diff > rel*float64(want) {
		t.Errorf("%s = %v, want %v ±%.1f%%", what, got, want, 100*rel)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h latencyHist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	within(t, "p95 of 1..1000 ms", h.quantile(0.95), 950*time.Millisecond, 0.016)
	within(t, "p50 of 1..1000 ms", h.quantile(0.5), 500*time.Millisecond, 0.016)
	if got, want := h.mean(), 500500*time.Microsecond; got != want {
		t.Errorf("mean = %v, want exactly %v", got, want)
	}
	if got := h.quantile(1); got != time.Second {
		t.Errorf("p100 = %v, want the exact maximum 1s", got)
	}

	// A tail of 6% puts the p95 in it; a tail of 4% does not.
	var tail, short latencyHist
	for i := range 1000 {
		d, e := 100*time.Millisecond, 100*time.Millisecond
		if i < 60 {
			d = 2 * time.Second
		}
		if i < 40 {
			e = 2 * time.Second
		}
		tail.add(d)
		short.add(e)
	}
	if got := tail.quantile(0.95); got != 2*time.Second {
		t.Errorf("p95 with a 6%% tail at 2s = %v, want 2s", got)
	}
	within(t, "p95 with a 4% tail", short.quantile(0.95), 100*time.Millisecond, 0.016)

	var empty latencyHist
	if empty.quantile(0.95) != 0 || empty.mean() != 0 {
		t.Error("empty histogram should report zeros")
	}
}

func TestHistogramIsBounded(t *testing.T) {
	var h latencyHist
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		h.add(time.Duration(r.Int64N(int64(time.Hour))))
	}
	if len(h.counts) > 1000 {
		t.Errorf("%d counters for latencies up to an hour, want a bounded histogram (<= 1000)", len(h.counts))
	}
	within(t, "p95 of uniform 0..1h", h.quantile(0.95), 57*time.Minute, 0.02)
}

func TestBucketsRoundTrip(t *testing.T) {
	for _, us := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 95_000, 1 << 40} {
		i := bucketOf(us)
		mid := bucketMid(i)
		if d := mid - float64(us); d > 0.016*float64(us)+1 || -d > 0.016*float64(us)+1 {
			t.Errorf("value %d µs -> bucket %d midpoint %.1f: off by more than 1.6%%", us, i, mid)
		}
		if i > 0 && bucketOf(us-1) > i {
			t.Errorf("buckets not monotonic at %d", us)
		}
	}
}
