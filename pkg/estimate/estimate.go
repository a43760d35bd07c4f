// Package estimate predicts what a planned batch will produce, cost and take, twice: the expected
// figures, from the best evidence there is of how long the answers will be, and the at-most figures,
// with every prompt using its whole max_tokens. The selector decides which lane serves each prompt;
// this package only adds up, per lane, what that assignment means.
//
// The expected output comes from, in order: results of the same model for prompts of this batch
// (the output of a resumed job, or a --calibrate file whose ids match), the mean answer length of
// the model's other results in those files, else a typical share of max_tokens per category
// (TypicalRatio). The wall time comes from the limits that are known (RPM, TPM, RPD, concurrency)
// and the latency measured in earlier results; it is a guess only when it rests on an assumed
// latency.
package estimate

import (
	"math"
	"time"

	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// Source says where an expected output comes from (the "expected_from" of estimate --json).
type Source string

// The sources of an expected output, best first.
const (
	FromResults     Source = "results"     // results already in the job's output file
	FromCalibration Source = "calibration" // a results file given with --calibrate
	FromSample      Source = "sample"      // results of prompts sent by estimate --sample
	FromTypical     Source = "typical"     // TypicalRatio: no results at all
)

// rank orders sources from best (0) to worst.
func (s Source) rank() int {
	switch s {
	case FromResults:
		return 0
	case FromCalibration:
		return 1
	case FromSample:
		return 2
	}
	return 3
}

// Worst returns the weaker of two sources: the whole of an estimate is only as good as its weakest
// part. The zero Source counts as best, so Worst("", s) is s.
func Worst(a, b Source) Source {
	if a == "" || (b != "" && b.rank() > a.rank()) {
		return b
	}
	return a
}

// TypicalRatio is the share of its max_tokens (or, without one, of the category's default output,
// tokens.OutputTokens) that a prompt of category cat is expected to use when no result says better.
//
// Source: these are the output/max_tokens ratios measured by the llmbatch project on its demo batch
// (testdata/prompts.jsonl, 237 prompts with the max_tokens their authors would set, run against the
// built-in simulator with testdata/providers.sim.yaml): tiny 0.29, small 0.33, large 0.12,
// reasoning 0.036, rounded. They are not measurements of any provider: they say that answers are
// usually much shorter than the max_tokens asked for, most of all where the cap is a generous
// default (reasoning: 2,048). Real reasoning models spend hidden tokens and may use more. Results of
// your own workload (a resumed output, --calibrate, --sample) replace them.
func TypicalRatio(cat model.Category) float64 {
	switch cat {
	case model.Tiny:
		return 0.3
	case model.Large:
		return 0.12
	case model.Reasoning:
		return 0.04
	}
	return 0.33 // small and unknown
}

// Figures are one version (expected or at most) of a lane's or a batch's estimate.
type Figures struct {
	OutputTokens int64
	CostUSD      float64 // rounded with money.Round
	WallTime     time.Duration
	Bound        Bound // what sets WallTime (a batch's: its slowest lane's)
	// Guess is set when WallTime rests on an assumed latency: the lane is bound by its concurrency
	// and no earlier result measured its latency.
	Guess bool
}

// Bound names the term that sets a lane's wall time.
type Bound string

// The terms of a lane's wall time.
const (
	BoundNone        Bound = ""
	BoundRPM         Bound = "rpm"
	BoundTPM         Bound = "tpm"
	BoundRPD         Bound = "rpd"
	BoundTPD         Bound = "tpd"
	BoundConcurrency Bound = "concurrency"
)

// Timing assumed when no result measured a lane's latency (the selector's defaults).
const (
	AssumedLatency               = selector.DefaultLatency
	AssumedOutputTokensPerSecond = selector.DefaultOutputTokensPerSecond
)

// Tally is the work the plan gives one lane, accumulated prompt by prompt with Add. The zero value
// is an empty tally.
type Tally struct {
	Prompts      int64
	InputTokens  int64
	Reserve      int64   // output tokens at most: Σ max_tokens (or the category default)
	typical      float64 // Σ TypicalRatio(category) × reserve
	capped       float64 // Σ min(reserve, the lane's mean earlier answer), when the lane has results
	cappedBySize bool
}

// Add records one prompt planned on the lane: its input tokens on that lane, its category and the
// output tokens it may use (reserve). meanOutput is the lane's mean earlier answer length from
// Evidence.MeanOutput (0 when none).
func (t *Tally) Add(input, reserve int, cat model.Category, meanOutput float64) {
	t.Prompts++
	t.InputTokens += int64(input)
	t.Reserve += int64(reserve)
	t.typical += TypicalRatio(cat) * float64(reserve)
	if meanOutput > 0 {
		t.capped += math.Min(float64(reserve), meanOutput)
		t.cappedBySize = true
	}
}

// LaneEstimate is a lane's expected and at-most figures.
type LaneEstimate struct {
	Prompts          int64
	Expected, AtMost Figures
	From             Source
	// Results is how many earlier results the expected output rests on (0 for FromTypical);
	// LatencyFrom is how many measured the latency (0: AssumedLatency was used).
	Results, LatencyFrom int
}

// Estimate turns a lane's tally into its figures. ev may be nil (no results at all).
func (t *Tally) Estimate(l *selector.Lane, ev *Evidence) LaneEstimate {
	e := LaneEstimate{Prompts: t.Prompts}
	if t.Prompts == 0 {
		e.From = FromTypical
		return e
	}
	le := ev.lane(l.Provider, l.Name)
	expOut := t.typical
	e.From = FromTypical
	switch {
	case le != nil && le.matchedReserve > 0:
		// Prompts of this very batch answered by this model: their share of max_tokens.
		expOut = float64(le.matchedOut) / float64(le.matchedReserve) * float64(t.Reserve)
		e.From, e.Results = ev.source, le.matched
	case le != nil && le.n > 0 && t.cappedBySize:
		expOut = t.capped
		e.From, e.Results = ev.source, le.n
	}
	expOut = math.Min(expOut, float64(t.Reserve))
	admission := t.InputTokens + t.Reserve // the limiter charges prompt + max_tokens against TPM/TPD

	// Latency per request: measured when results timed this lane, else assumed from the output.
	var expLatency, maxLatency time.Duration
	perToken := float64(time.Second) / AssumedOutputTokensPerSecond
	if le != nil && le.latencyN > 0 {
		mean := le.latency / time.Duration(le.latencyN)
		expLatency = mean
		// A longer answer takes longer: add the extra tokens at the assumed speed.
		extra := math.Max(float64(t.Reserve)-expOut, 0) / float64(t.Prompts)
		maxLatency = mean + time.Duration(extra*perToken)
		e.LatencyFrom = le.latencyN
	} else {
		expLatency = AssumedLatency + time.Duration(expOut/float64(t.Prompts)*perToken)
		maxLatency = AssumedLatency + time.Duration(float64(t.Reserve)/float64(t.Prompts)*perToken)
	}
	measured := e.LatencyFrom > 0

	out := int64(math.Round(expOut))
	e.Expected = Figures{OutputTokens: out, CostUSD: money.Round(l.Cost(int(t.InputTokens), int(out)))}
	e.Expected.WallTime, e.Expected.Bound = WallTime(l, t.Prompts, admission, expLatency)
	e.Expected.Guess = e.Expected.Bound == BoundConcurrency && !measured
	e.AtMost = Figures{OutputTokens: t.Reserve, CostUSD: money.Round(l.Cost(int(t.InputTokens), int(t.Reserve)))}
	e.AtMost.WallTime, e.AtMost.Bound = WallTime(l, t.Prompts, admission, maxLatency)
	e.AtMost.Guess = e.AtMost.Bound == BoundConcurrency && !measured
	return e
}

// WallTime is the time lane l needs for n requests charging admission tokens against its token
// limits, each taking latency: the largest of the per-minute limits' windows, the whole days RPD
// and TPD make the later requests wait, and n × latency / concurrency, plus one latency for the
// last answer to come back. The engine sends a window's share of RPM and TPM at once and the next
// share when the window has passed (plus its guard of 1/60), so a limit's term is the whole windows
// before the last share: a 60 s window unless the lane's config states the window or quantum (the
// run learns an unstated one from the provider's first answers). The bound is the largest term.
func WallTime(l *selector.Lane, n, admission int64, latency time.Duration) (time.Duration, Bound) {
	if n <= 0 {
		return 0, BoundNone
	}
	conc := l.Concurrency
	if conc <= 0 {
		conc = selector.DefaultConcurrency
	}
	t, b := float64(n)*latency.Seconds()/float64(conc), BoundConcurrency
	period := time.Minute
	switch {
	case l.Limits.Quantum > 0:
		period = l.Limits.Quantum
	case l.Limits.Window > 0:
		period = l.Limits.Window
	}
	windows := func(total int64, perMinute int) float64 {
		share := max(int64(perMinute)*int64(period)/int64(time.Minute), 1)
		return float64((total-1)/share) * (period + min(period/60, time.Second)).Seconds()
	}
	if l.Limits.RPM > 0 {
		if v := windows(n, l.Limits.RPM); v >= t {
			t, b = v, BoundRPM
		}
	}
	if l.Limits.TPM > 0 && admission > 0 {
		if v := windows(admission, l.Limits.TPM); v >= t {
			t, b = v, BoundTPM
		}
	}
	day := (24 * time.Hour).Seconds()
	if l.Limits.RPD > 0 && n > int64(l.Limits.RPD) {
		if v := float64((n-1)/int64(l.Limits.RPD)) * day; v >= t {
			t, b = v, BoundRPD
		}
	}
	if l.Limits.TPD > 0 && admission > int64(l.Limits.TPD) {
		if v := float64((admission-1)/int64(l.Limits.TPD)) * day; v >= t {
			t, b = v, BoundTPD
		}
	}
	return time.Duration(math.Ceil((t + latency.Seconds()) * float64(time.Second))), b
}

// Total adds lane estimates into a batch's: tokens and costs add up, the wall time is the slowest
// lane's (lanes run in parallel) with its bound and guess, and the source is the weakest used.
func Total(lanes []LaneEstimate) LaneEstimate {
	var tot LaneEstimate
	var expCost, maxCost float64
	for _, e := range lanes {
		if e.Prompts == 0 {
			continue // a lane without work
		}
		tot.Prompts += e.Prompts
		tot.From = Worst(tot.From, e.From)
		tot.Results += e.Results
		tot.LatencyFrom += e.LatencyFrom
		tot.Expected.OutputTokens += e.Expected.OutputTokens
		tot.AtMost.OutputTokens += e.AtMost.OutputTokens
		expCost += e.Expected.CostUSD
		maxCost += e.AtMost.CostUSD
		if e.Expected.WallTime >= tot.Expected.WallTime {
			tot.Expected.WallTime, tot.Expected.Bound, tot.Expected.Guess = e.Expected.WallTime, e.Expected.Bound, e.Expected.Guess
		}
		if e.AtMost.WallTime >= tot.AtMost.WallTime {
			tot.AtMost.WallTime, tot.AtMost.Bound, tot.AtMost.Guess = e.AtMost.WallTime, e.AtMost.Bound, e.AtMost.Guess
		}
	}
	if tot.From == "" {
		tot.From = FromTypical
	}
	tot.Expected.CostUSD, tot.AtMost.CostUSD = money.Round(expCost), money.Round(maxCost)
	return tot
}
