package batch_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// A lane whose real limit (20 RPM) is hidden and below the configured one answers 429s, and one
// request in four fails with a 500; two attempts per lane leave some prompts with error lines.
const countsConfig = `
defaults: {concurrency: 8, timeout: 10s, retry: {max_attempts: 2, base_delay: 500ms, max_delay: 2s, jitter: 0.25}, breaker: {failure_threshold: 1000, open_for: 5s}}
providers:
  - name: only
    type: sim
    models:
      - {name: o-small, category: small, rpm: 600, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 200ms, seed: 4, faults: {server_error: 0.25}, limits: {o-small: {rpm: 20, hide_headers: true}}}
`

// The summary's 429 and retry counts equal what the simulator recorded, in a run stopped half-way
// (its unfinished prompts' requests included) and in the resumed run that completes the job.
func TestSummaryCountsMatchTheSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, countsConfig, 60)
		srv := sim.New(r.cfg, sim.Options{Now: time.Now, Seed: 9})
		var before sim.ModelStats
		delta := func() sim.ModelStats {
			now := srv.Stats()["only/o-small"]
			d := sim.ModelStats{Requests: now.Requests - before.Requests, RateLimited: now.RateLimited - before.RateLimited}
			before = now
			return d
		}

		// Run 1 stops after 45 s: prompts waiting for a retry or for the lane are left unfinished.
		o := r.simOptions(srv)
		stopAfter(&o, 45*time.Second)
		rep, err := batch.Run(context.Background(), o)
		if err != nil || !rep.Interrupted || rep.Remaining == 0 {
			t.Fatalf("run 1: %+v, %v; want interrupted with prompts remaining", rep, err)
		}
		s, d := o.Summary.JSON(), delta()
		t.Logf("run 1: %d ok, %d failed, %d remaining; simulator: %d requests, %d 429s; summary: %d 429s, %d retries, unfinished %+v",
			rep.OK, rep.Failed, rep.Remaining, d.Requests, d.RateLimited, s.RateLimited, s.Retries, s.Unfinished)
		if s.RateLimited != d.RateLimited || d.RateLimited == 0 {
			t.Errorf("run 1: summary 429s %d, simulator %d (want equal, above 0)", s.RateLimited, d.RateLimited)
		}
		// Each prompt sent is one first request plus its retries; unfinished prompts' first
		// requests are not listed, so the sum is at most the simulator's count.
		if sent := rep.OK + rep.Failed + s.Retries; sent > d.Requests {
			t.Errorf("run 1: %d results + %d retries = %d requests, simulator saw %d", rep.OK+rep.Failed, s.Retries, sent, d.Requests)
		}

		// Run 2 resumes and completes: every prompt it sends ends with a line of its own.
		doneBefore := map[string]bool{}
		for _, l := range r.lines() {
			doneBefore[l.CustomID] = l.Status == results.StatusOK
		}
		o = r.simOptions(srv)
		rep, err = batch.Run(context.Background(), o)
		if err != nil || rep.Remaining != 0 || rep.Skipped == 0 {
			t.Fatalf("run 2: %+v, %v; want a resumed run that completes", rep, err)
		}
		s, d = o.Summary.JSON(), delta()
		// Prompts that sent at least one request (one failed by a dead lane may have sent none):
		// after compaction, one line per prompt, run 2's for those not done before it.
		firsts, written := 0, 0
		for id, l := range r.byID() {
			if !doneBefore[id] {
				written++
				if l.Attempts > 0 {
					firsts++
				}
			}
		}
		t.Logf("run 2: %d ok, %d failed, %d skipped; simulator: %d requests, %d 429s; summary: %d 429s, %d retries",
			rep.OK, rep.Failed, rep.Skipped, d.Requests, d.RateLimited, s.RateLimited, s.Retries)
		if s.RateLimited != d.RateLimited || d.RateLimited == 0 {
			t.Errorf("run 2: summary 429s %d, simulator %d (want equal, above 0)", s.RateLimited, d.RateLimited)
		}
		if sent := firsts + s.Retries; sent != d.Requests || s.Retries == 0 || rep.OK+rep.Failed != written {
			t.Errorf("run 2: %d prompts sent + %d retries = %d requests, simulator saw %d (%d lines for %d results)",
				firsts, s.Retries, sent, d.Requests, written, rep.OK+rep.Failed)
		}
		var lanes429, lanesRetries int
		for _, m := range s.Models {
			lanes429 += m.RateLimited
			lanesRetries += m.Retries
		}
		if lanes429 != s.RateLimited || lanesRetries != s.Retries {
			t.Errorf("run 2: lanes' rows %d 429s, %d retries; totals %d, %d", lanes429, lanesRetries, s.RateLimited, s.Retries)
		}
	})
}
