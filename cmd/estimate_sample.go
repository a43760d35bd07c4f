package cmd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/estimate"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// This file is `estimate --sample N`: N prompts drawn across the models the plan uses are sent (as
// run would send them), their results are written to the job's output, so run does not send them
// again, and their answers' length and latency become the estimate's evidence.

// sampler draws prompts across lanes: a reservoir of up to n per lane, then a share of n per lane
// in proportion to the lane's weight (its cost at most, so the models that decide the bill are
// measured best; its prompts when the batch costs nothing). The draw is reproducible (a fixed seed).
type sampler struct {
	n      int
	rng    *rand.Rand
	seen   map[int32]int
	picked map[int32][]sampled
}

type sampled struct {
	line int
	id   string
}

func newSampler(n int) *sampler {
	return &sampler{n: n, rng: rand.New(rand.NewPCG(1, 2)), seen: map[int32]int{}, picked: map[int32][]sampled{}}
}

// add offers one prompt planned on lane (reservoir sampling, algorithm R).
func (s *sampler) add(lane int32, line int, id string) {
	s.seen[lane]++
	r := s.picked[lane]
	if len(r) < s.n {
		s.picked[lane] = append(r, sampled{line, id})
		return
	}
	if j := s.rng.IntN(s.seen[lane]); j < s.n {
		r[j] = sampled{line, id}
	}
}

// pick returns the sample: each lane's share of n by weight (largest remainders; at least one per
// lane while n allows), in input order. weight(lane) must not be negative; when all are 0 the
// lanes' prompt counts are used.
func (s *sampler) pick(weight func(lane int32) float64) []sampled {
	lanes := make([]int32, 0, len(s.seen))
	total := 0
	var wsum float64
	for l, c := range s.seen {
		lanes = append(lanes, l)
		total += c
		wsum += weight(l)
	}
	slices.Sort(lanes)
	if total == 0 {
		return nil
	}
	if wsum <= 0 {
		weight = func(l int32) float64 { return float64(s.seen[l]) }
		wsum = float64(total)
	}
	quota := map[int32]int{}
	left := min(s.n, total)
	if left >= len(lanes) { // every model answers at least once
		for _, l := range lanes {
			quota[l] = 1
		}
		left -= len(lanes)
	}
	type rem struct {
		lane int32
		frac float64
	}
	var rems []rem
	spare := left
	for _, l := range lanes {
		share := float64(left) * weight(l) / wsum
		q := min(int(share), len(s.picked[l])-quota[l])
		quota[l] += q
		spare -= q
		rems = append(rems, rem{l, share - float64(int(share))})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return 0
	})
	for spare > 0 {
		moved := false
		for _, r := range rems {
			if spare > 0 && quota[r.lane] < len(s.picked[r.lane]) {
				quota[r.lane]++
				spare--
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	var out []sampled
	for _, l := range lanes {
		out = append(out, s.picked[l][:quota[l]]...)
	}
	slices.SortFunc(out, func(a, b sampled) int { return a.line - b.line })
	return out
}

// runSample draws and sends the sample and returns the evidence of its results. done tells which
// prompts already have a result (they are not drawn).
func runSample(ctx context.Context, opts *EstimateOptions, cfg *config.Config, sel selector.Options, chk *batch.Prepared,
	outPath string, done func(id string) bool) (*estimate.Evidence, error) {
	if outPath == "" || outPath == "-" {
		return nil, usageErr(fmt.Errorf("--sample writes its results to the job's output: name it with -o FILE"))
	}
	planner := selector.NewPlanner(chk.Lanes, sel)
	s := newSampler(opts.Sample)
	err := chk.Analyze(ctx, opts.Workers, func(a *batch.Analyzed) error {
		as, err := planner.Add(&a.Item)
		if err == nil && !done(a.Item.ID) {
			s.add(as.Lane, a.Req.Line, a.Item.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sum := planner.Summary()
	picked := s.pick(func(l int32) float64 { return sum.Lanes[l].CostUSD })
	ev := estimate.NewEvidence(estimate.FromSample)
	if len(picked) == 0 {
		return ev, nil
	}
	tmp, err := writeSampleInput(chk, picked)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)

	now := opts.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	logger := slog.New(slog.NewTextHandler(opts.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, runErr := batch.Run(ctx, batch.Options{Config: cfg, Select: sel, Getenv: opts.Getenv, Input: tmp,
		Output: outPath, Format: results.FormatDefault, Transport: opts.Transport, Logger: logger, Now: now})
	if runErr != nil {
		return nil, fmt.Errorf("--sample: %w", runErr)
	}
	fmt.Fprintf(opts.IO.ErrOut, "sample: sent %d prompts (%d ok, %d failed) in %s for %s; their results are in %s, so run will not send them again\n",
		len(picked), rep.OK, rep.Failed, now().Sub(start).Round(time.Millisecond), usd(rep.CostUSD), outPath)
	if err := ev.ReadFile(outPath, false); err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(picked))
	for _, p := range picked {
		ids[p.id] = true
	}
	ev.Only(func(id string) bool { return ids[id] })
	return ev, nil
}

// writeSampleInput copies the sampled lines of the input, as they are, to a temporary JSONL file.
func writeSampleInput(chk *batch.Prepared, picked []sampled) (string, error) {
	r, err := chk.Input.Open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	f, err := os.CreateTemp("", "llmbatch-sample-*.jsonl")
	if err != nil {
		return "", fmt.Errorf("--sample: %w", err)
	}
	w := bufio.NewWriter(f)
	br := bufio.NewReaderSize(r, 1<<16)
	next := 0
	for line := 1; next < len(picked); line++ {
		b, err := br.ReadBytes('\n')
		if line == picked[next].line {
			if line == 1 {
				b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a BOM belongs to the file's start only
			}
			if len(b) == 0 || b[len(b)-1] != '\n' {
				b = append(b, '\n')
			}
			w.Write(b)
			next++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return "", fmt.Errorf("--sample: reading %s: %w", chk.Input.Name(), err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("--sample: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("--sample: %w", err)
	}
	return f.Name(), nil
}
