package progress

import (
	"math"
	"math/bits"
	"time"
)

// latencyHist is a log-linear histogram of durations in microseconds, so latency quantiles take
// bounded memory however many requests a run makes: values below 64 µs have one counter each,
// larger ones 32 counters per power of two, so a quantile read at a bucket's midpoint is within 1.6%
// of the true sample. It holds at most ~1,900 counters, and only as many as its largest value needs.
// The mean, minimum and maximum are exact.
type latencyHist struct {
	counts   []uint64
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

const (
	exactBelow = 64 // µs
	subBuckets = 32 // per power of two above exactBelow
)

func bucketOf(us uint64) int {
	if us < exactBelow {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us>>e is in [32, 64)
	return exactBelow + (e-1)*subBuckets + int(us>>e) - subBuckets
}

// bucketMid returns the midpoint of bucket i in µs.
func bucketMid(i int) float64 {
	if i < exactBelow {
		return float64(i)
	}
	e := (i-exactBelow)/subBuckets + 1
	m := (i-exactBelow)%subBuckets + subBuckets
	return float64(uint64(m)<<e) + float64((uint64(1)<<e)-1)/2
}

func (h *latencyHist) add(d time.Duration) {
	d = max(d, 0)
	i := bucketOf(uint64(d / time.Microsecond))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

func (h *latencyHist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// quantile returns the q-quantile (0 < q <= 1): the smallest sample with at least q·n samples at or
// below it, read at its bucket's midpoint and clamped to the exact extremes.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(bucketMid(i) * float64(time.Microsecond))
			return min(max(d, h.min), h.max)
		}
	}
	return h.max
}
