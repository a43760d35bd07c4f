package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/batchplan"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/estimate"
	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// boundBatch is the wall-time bound of a lane on the batch route: its jobs' turnaround.
const boundBatch estimate.Bound = "batch"

// routed returns the lane estimates at their routes: a batch lane's costs at the batch discount and
// its wall time the expected turnaround of its waves of jobs (batchplan.Wall), expected and at most
// alike (a batch job's time does not depend on the answers' length). Realtime lanes are unchanged.
func routed(cfg *config.Config, lanes []*selector.Lane, est []estimate.LaneEstimate, tallies []estimate.Tally,
	routes []batchplan.Decision) []estimate.LaneEstimate {
	out := make([]estimate.LaneEstimate, len(est))
	for i, e := range est {
		d := routes[i]
		if d.Route == batchplan.Batch && e.Prompts > 0 {
			wt := laneBatchWall(cfg, lanes[i], d, e.Prompts, tallies[i].InputTokens+tallies[i].Reserve)
			for _, f := range []*estimate.Figures{&e.Expected, &e.AtMost} {
				f.CostUSD = money.Round(d.Price(f.CostUSD))
				f.WallTime, f.Bound, f.Guess = wt, boundBatch, false
			}
		}
		out[i] = e
	}
	return out
}

// routeSplitJSON is one route's share of a plan in estimate --json.
type routeSplitJSON struct {
	Prompts  int64       `json:"prompts"`
	Expected figuresJSON `json:"expected"`
	AtMost   figuresJSON `json:"at_most"`
}

// routesJSON is the split of a plan between the routes, and what it would be all realtime.
type routesJSON struct {
	Via          string         `json:"via"`
	Batch        routeSplitJSON `json:"batch"`
	Realtime     routeSplitJSON `json:"realtime"`
	RealtimeOnly routeSplitJSON `json:"realtime_only"` // every prompt through the realtime APIs
}

// laneRouteJSON is a lane's route in estimate --json.
type laneRouteJSON struct {
	Route             string  `json:"route"`
	Reason            string  `json:"route_reason"`
	Discount          float64 `json:"batch_discount,omitempty"`
	TurnaroundSeconds float64 `json:"turnaround_seconds,omitempty"`
	TurnaroundFrom    string  `json:"turnaround_from,omitempty"` // config | learned
	TurnaroundJobs    int     `json:"turnaround_jobs,omitempty"` // earlier jobs it was learned from
	// Realtime is the lane's cost and wall time through the realtime APIs.
	Realtime routeSplitJSON `json:"realtime"`
}

// addRoutes fills the route fields of a plan's JSON: the split, the all-realtime figures and each
// model's route (models[] holds the lanes with prompts, in lane order, as planJSON builds it).
func addRoutes(p *estimatePlanJSON, s selector.Summary, via string, routes []batchplan.Decision,
	at, realtime []estimate.LaneEstimate) {
	r := &routesJSON{Via: via}
	if r.Via == "" {
		r.Via = batchplan.ViaRealtime
	}
	var batchLanes, rtLanes []estimate.LaneEstimate
	k := 0
	for i, t := range s.Lanes {
		if t.Prompts == 0 {
			continue
		}
		d := routes[i]
		if d.Route == batchplan.Batch {
			batchLanes = append(batchLanes, at[i])
		} else {
			rtLanes = append(rtLanes, at[i])
		}
		lr := laneRouteJSON{Route: string(d.Route), Reason: d.Reason, Discount: d.Discount,
			Realtime: split(realtime[i])}
		if d.Route == batchplan.Batch {
			lr.TurnaroundSeconds, lr.TurnaroundJobs = d.Turnaround.Expected.Seconds(), d.Turnaround.Learned
			lr.TurnaroundFrom = "config"
			if d.Turnaround.Learned > 0 {
				lr.TurnaroundFrom = "learned"
			}
		}
		p.Models[k].laneRouteJSON = lr
		k++
	}
	r.Batch, r.Realtime = split(estimate.Total(batchLanes)), split(estimate.Total(rtLanes))
	r.RealtimeOnly = split(estimate.Total(realtime))
	p.Routes = r
}

func split(e estimate.LaneEstimate) routeSplitJSON {
	return routeSplitJSON{Prompts: e.Prompts, Expected: figures(e.Expected), AtMost: figures(e.AtMost)}
}

// printRoutes writes the route of every lane and the split between the routes, with both prices.
func printRoutes(w io.Writer, p estimatePlanJSON) {
	r := p.Routes
	deadline := ""
	if p.DeadlineSeconds > 0 {
		deadline = fmt.Sprintf(", --deadline %s", wallSeconds(p.DeadlineSeconds))
	}
	fmt.Fprintf(w, "\nRoutes (--via %s%s):\n", r.Via, deadline)
	width := len("PROVIDER/MODEL")
	for _, m := range p.Models {
		width = max(width, len(m.Provider)+1+len(m.Model))
	}
	const row = "%-*s  %-8s  %7s  %-24s  %10s  %10s  %10s  %10s  %s"
	line := func(args ...any) { fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf(row, args...), " ")) }
	line(width, "", "", "", "", "COST USD", "", "REALTIME", "", "")
	line(width, "PROVIDER/MODEL", "ROUTE", "PROMPTS", "TURNAROUND", "expected", "at most", "expected", "at most", "WHY")
	for _, m := range p.Models {
		turn := "-"
		if m.Route == string(batchplan.Batch) {
			turn = wallSeconds(m.TurnaroundSeconds) + " (" + m.TurnaroundFrom
			if m.TurnaroundJobs > 0 {
				turn += fmt.Sprintf(", %d jobs", m.TurnaroundJobs)
			}
			turn += ")"
		}
		line(width, m.Provider+"/"+m.Model, m.Route, num(m.Prompts), turn, usd(m.Expected.CostUSD), usd(m.AtMost.CostUSD),
			usd(m.Realtime.Expected.CostUSD), usd(m.Realtime.AtMost.CostUSD), m.Reason)
	}
	fmt.Fprintf(w, "Split: %s prompts batch (expected %s, at most %s, in %s), %s prompts realtime (expected %s, at most %s, in %s).\n",
		num(r.Batch.Prompts), usd(r.Batch.Expected.CostUSD), usd(r.Batch.AtMost.CostUSD), wallSeconds(r.Batch.Expected.WallTimeSeconds),
		num(r.Realtime.Prompts), usd(r.Realtime.Expected.CostUSD), usd(r.Realtime.AtMost.CostUSD), wallSeconds(r.Realtime.Expected.WallTimeSeconds))
	fmt.Fprintf(w, "All realtime: expected %s, at most %s, in %s; this route: expected %s, at most %s, in %s.\n",
		usd(r.RealtimeOnly.Expected.CostUSD), usd(r.RealtimeOnly.AtMost.CostUSD), wallSeconds(r.RealtimeOnly.Expected.WallTimeSeconds),
		usd(p.Expected.CostUSD), usd(p.AtMost.CostUSD), wallSeconds(p.Expected.WallTimeSeconds))
}
