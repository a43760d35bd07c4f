package selector

// This file holds the estimate: per-lane and batch totals of a plan and the wall time its lanes need
// under their limits.

import (
	"math"
	"time"
)

// Bound names what limits a lane's wall time.
type Bound uint8

// The terms of a lane's wall time: max(requests/RPM, tokens/TPM, latency×requests/concurrency).
const (
	BoundNone        Bound = iota // the lane has no work
	BoundRPM                      // requests per minute
	BoundTPM                      // tokens per minute
	BoundConcurrency              // in-flight bound × typical latency: a guess
)

// String returns "rpm", "tpm", "concurrency" or "".
func (b Bound) String() string {
	switch b {
	case BoundRPM:
		return "rpm"
	case BoundTPM:
		return "tpm"
	case BoundConcurrency:
		return "concurrency"
	}
	return ""
}

// LaneTotal is the work a plan gives one lane.
type LaneTotal struct {
	Lane             *Lane
	Prompts          int64
	InputTokens      int64
	OutputTokens     int64
	CostUSD          float64
	EstimatedPrompts int64         // prompts whose input count is an estimate for this lane's tokenizer
	WallTime         time.Duration // estimated time to send this lane's prompts under its limits
	Bound            Bound         // the term that sets WallTime
}

// Guess reports whether the wall time rests on a guessed latency rather than published limits.
func (t LaneTotal) Guess() bool { return t.Bound == BoundConcurrency }

// Summary totals a plan.
type Summary struct {
	Prefer   Prefer
	Deadline time.Duration

	Prompts          int64 // items seen
	Unassigned       int64 // items no lane can serve
	Escalated        int64 // items served above their own category
	InputTokens      int64 // on the assigned lanes
	OutputTokens     int64
	CostUSD          float64
	EstimatedPrompts int64 // assigned items whose input count is an estimate

	// WallTime is the longest lane's wall time (lanes run in parallel); WallTimeGuess is set when that
	// lane's time rests on a guessed latency.
	WallTime      time.Duration
	WallTimeGuess bool
	// DeadlineMet is false when a deadline was given and no assignment found fits it.
	DeadlineMet bool

	Lanes []LaneTotal // one per lane, in the planner's lane order (unused lanes have zero totals)
}

// seconds is a lane's wall time for a load, and the term that sets it.
func (p *Planner) seconds(i int32, reqs, tokens int64, latency float64) (float64, Bound) {
	if reqs == 0 {
		return 0, BoundNone
	}
	l := p.lanes[i]
	conc := l.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	t, b := latency/float64(conc), BoundConcurrency
	if l.Limits.RPM > 0 {
		if v := float64(reqs) * 60 / float64(l.Limits.RPM); v >= t {
			t, b = v, BoundRPM
		}
	}
	if l.Limits.TPM > 0 {
		if v := float64(tokens) * 60 / float64(l.Limits.TPM); v >= t {
			t, b = v, BoundTPM
		}
	}
	return t, b
}

// Summary totals what has been assigned so far.
func (p *Planner) Summary() Summary {
	s := Summary{
		Prefer: p.opts.Prefer, Deadline: p.opts.Deadline,
		Prompts: p.prompts, Unassigned: p.unassigned, Escalated: p.escalated,
		Lanes: make([]LaneTotal, len(p.lanes)),
	}
	var longest float64
	for i, l := range p.lanes {
		ld := &p.load[i]
		sec, b := p.seconds(int32(i), ld.reqs, ld.tokens, ld.latency)
		t := LaneTotal{Lane: l, Prompts: ld.reqs, InputTokens: ld.in, OutputTokens: ld.out,
			CostUSD: ld.cost, EstimatedPrompts: ld.estimated, WallTime: seconds(sec), Bound: b}
		s.Lanes[i] = t
		s.InputTokens += ld.in
		s.OutputTokens += ld.out
		s.CostUSD += ld.cost
		s.EstimatedPrompts += ld.estimated
		if ld.reqs > 0 && sec >= longest {
			longest = sec
			s.WallTime, s.WallTimeGuess = t.WallTime, t.Guess()
		}
	}
	s.DeadlineMet = p.opts.Deadline <= 0 || s.WallTime <= p.opts.Deadline
	return s
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
}
