// Package batchplan decides which route a lane's prompts take under `--via` — the realtime APIs or
// the provider's batch jobs — and what the batch route costs and takes: the discounted price and the
// expected turnaround, configured per provider or learned from this machine's earlier jobs. run,
// select and estimate all decide through Decide, so the dry runs show exactly what run does.
package batchplan

import (
	"fmt"
	"math"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
)

// Modes of `--via`.
const (
	ViaRealtime = "realtime" // every prompt through the realtime APIs (the default)
	ViaBatch    = "batch"    // lanes whose provider has batch enabled go as provider batch jobs
	ViaAuto     = "auto"     // batch where the expected turnaround fits --deadline (and batch is cheaper)
)

// CheckVia returns an error naming the flag when via is not a mode ("" is realtime).
func CheckVia(via string) error {
	switch via {
	case "", ViaRealtime, ViaBatch, ViaAuto:
		return nil
	}
	return fmt.Errorf("--via %q: want realtime, batch or auto", via)
}

// Route is where a lane's prompts go.
type Route string

// Routes.
const (
	Realtime Route = "realtime"
	Batch    Route = "batch"
)

// Turnaround is a provider's expected batch turnaround and where it comes from.
type Turnaround struct {
	Expected time.Duration
	// Learned is how many earlier jobs of the provider it was learned from; 0 = the config's
	// batch.turnaround (fewer than MinSamples jobs known).
	Learned int
}

// Source says where the turnaround comes from, for people: "config" or "learned from N jobs".
func (t Turnaround) Source() string {
	if t.Learned == 0 {
		return "config"
	}
	return fmt.Sprintf("learned from %d jobs", t.Learned)
}

// Decision is a lane's route with what decided it.
type Decision struct {
	Route Route
	// Discount is the fraction of the realtime price a batch answer is not charged (0 on the
	// realtime route).
	Discount float64
	// Turnaround is the provider's expected batch turnaround (zero when batch is not enabled).
	Turnaround Turnaround
	// Reason says why, e.g. "expected turnaround 24h0m0s misses --deadline 2h0m0s".
	Reason string
}

// Decide is the route of a lane of provider p under via with the selection's deadline (0 = none),
// given the provider's expected turnaround t:
//   - realtime, or a provider without batch enabled: realtime;
//   - batch: batch;
//   - auto: batch when t fits the deadline and batch is cheaper (a discount above 0); without a
//     deadline, batch wherever it is cheaper.
func Decide(via string, p *config.Provider, deadline time.Duration, t Turnaround) Decision {
	if p == nil || p.Batch == nil || !p.Batch.Enabled {
		return Decision{Route: Realtime, Reason: "batch not enabled for the provider"}
	}
	d := Decision{Route: Realtime, Turnaround: t}
	disc := p.Batch.DiscountOrDefault()
	switch via {
	case "", ViaRealtime:
		d.Reason = "--via realtime"
	case ViaBatch:
		d.Route, d.Reason = Batch, "--via batch"
	case ViaAuto:
		switch {
		case disc <= 0:
			d.Reason = "auto: batch is not cheaper (discount 0)"
		case deadline > 0 && t.Expected > deadline:
			d.Reason = fmt.Sprintf("auto: expected turnaround %s (%s) misses --deadline %s", t.Expected, t.Source(), deadline)
		case deadline > 0:
			d.Route, d.Reason = Batch, fmt.Sprintf("auto: expected turnaround %s (%s) fits --deadline %s", t.Expected, t.Source(), deadline)
		default:
			d.Route, d.Reason = Batch, "auto: no --deadline and batch is cheaper"
		}
	}
	if d.Route == Batch {
		d.Discount = disc
	}
	return d
}

// Price is a realtime cost at the decision's route: the batch discount applied on the batch route.
func (d Decision) Price(realtime float64) float64 { return realtime * (1 - d.Discount) }

// Wall is the expected wall time of n prompts charging tokens (prompt estimate + max_tokens each)
// on the batch route of provider p's model: the prompts are cut into jobs of at most max_requests,
// at most jobs of them in flight at once (the lane runner's bound) and at most the model's
// enqueued-token limit of tokens in unfinished jobs; each wave of jobs takes one turnaround.
// (The max_bytes cap is not known before the requests are encoded; it can only add jobs.)
func Wall(p *config.Provider, modelName string, n, tokens int64, jobs int, turnaround time.Duration) time.Duration {
	if n <= 0 || p == nil || p.Batch == nil {
		return 0
	}
	chunks := int64(1)
	if m := int64(p.Batch.MaxRequests); m > 0 {
		chunks = ceilDiv(n, m)
	}
	waves := ceilDiv(chunks, int64(max(jobs, 1)))
	if limit := p.Batch.EnqueuedTokens[modelName]; limit > 0 {
		waves = max(waves, ceilDiv(tokens, limit))
	}
	if waves > math.MaxInt64/int64(max(turnaround, 1)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(waves) * turnaround
}

// LaneJobs is how many provider jobs one lane runner keeps in flight (run's batch route).
const LaneJobs = 4

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
