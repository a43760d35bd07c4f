package cmd

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

// batchConfig is one sim provider speaking api with batch enabled (turnaround 24h expected) and
// the simulator's batch behaviour simBatch.
func batchConfig(api, simBatch string) string {
	return fmt.Sprintf(`
defaults: {concurrency: 32, timeout: 60s}
providers:
  - name: sb
    type: sim
    batch: {enabled: true, poll: 30s, turnaround: 24h}
    models:
      - {name: m, category: small, input_per_mtok: 0.15, output_per_mtok: 0.6, max_output_tokens: 4096}
    sim: {api: %s, batch: %s}
`, api, simBatch)
}

// TestRunViaBatchEachDialect: 2,000 prompts through `run --via batch` per dialect, answered in full
// by provider batch jobs (none through the realtime API) at half the realtime price, each line
// marked via batch with its batch id; failed lines (5% errored, 2% expired) were sent again.
func TestRunViaBatchEachDialect(t *testing.T) {
	for _, api := range []string{"openai", "anthropic", "gemini"} {
		t.Run(api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, batchConfig(api, "{turnaround: 40m, errored: 0.05, expired: 0.02}"), 2000, 40)
				got, elapsed := s.runOK("--via", "batch")
				m := s.cfg.Providers[0].Models[0]
				var batch, realtime float64
				jobs := map[string]bool{}
				for id, r := range got {
					if r.Via != "batch" || r.BatchID == "" || r.Provider != "sb" {
						t.Fatalf("%s: via %q batch_id %q", id, r.Via, r.BatchID)
					}
					jobs[r.BatchID] = true
					want := math.Round(tokens.Cost(m, r.Usage.InputTokens, r.Usage.OutputTokens)/2*1e10) / 1e10
					if math.Abs(r.CostUSD-want) > 1e-12 {
						t.Fatalf("%s: cost %v, want half of realtime %v", id, r.CostUSD, want)
					}
					batch += r.CostUSD
					realtime += tokens.Cost(m, r.Usage.InputTokens, r.Usage.OutputTokens)
				}
				if math.Abs(batch-realtime/2) > 1e-8 {
					t.Errorf("total %.8f, realtime %.8f", batch, realtime)
				}
				st := s.stats("sb/m")
				if st.Requests != 0 || st.BatchOK != 2000 || st.BatchDuplicateLive != 0 || st.BatchFailed == 0 {
					t.Errorf("sim stats %+v: want 2000 answered once by batch jobs, failures resent, nothing realtime", st)
				}
				if len(jobs) < 2 {
					t.Errorf("answers from %d jobs: failed lines should have gone out in a new job", len(jobs))
				}
				if elapsed < 40*time.Minute {
					t.Errorf("done in %v, before a job's turnaround", elapsed)
				}
				// A rerun finds everything answered and sends nothing.
				before := s.stats("sb/m")
				s.runOK("--via", "batch")
				if after := s.stats("sb/m"); after.BatchLines != before.BatchLines || after.Requests != 0 {
					t.Errorf("rerun sent work: %+v", after)
				}
			})
		})
	}
}

// TestRunViaAutoFollowsTheDeadline: with a deadline shorter than the expected turnaround the lane
// goes realtime; with a longer one it goes as batch jobs.
func TestRunViaAutoFollowsTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, batchConfig("openai", "{turnaround: 10m}"), 100, 40)
		got, _ := s.runOK("--via", "auto", "--deadline", "1h")
		if st := s.stats("sb/m"); st.Requests != 100 || st.BatchLines != 0 || got["p00000"].Via != "" {
			t.Errorf("deadline 1h < turnaround 24h: %+v, via %q", st, got["p00000"].Via)
		}
		s.runOK("--via", "auto", "--deadline", "48h", "--fresh")
		if st := s.stats("sb/m"); st.BatchOK != 100 {
			t.Errorf("deadline 48h: %+v", st)
		}
	})
}

// TestRunViaBatchInterruptCancelResume: Ctrl-C while the jobs run leaves them live and prints the
// resume command; `llmbatch cancel OUT` cancels them; the resume command keeps what the cancelled
// jobs answered and sends the rest again; every prompt ends answered, none twice.
func TestRunViaBatchInterruptCancelResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, batchConfig("anthropic", "{turnaround: 2h}"), 400, 40)
		sigs := make(chan os.Signal, 1)
		done := make(chan int)
		go func() { done <- s.exec(sigs, "run", s.input, "-c", s.cfgPath, "-o", s.output, "--via", "batch") }()
		time.Sleep(time.Hour)
		sigs <- os.Interrupt
		if code := <-done; code != ExitInterrupted {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		_, resume, ok := strings.Cut(s.stderr.String(), "Resume with:\n  ")
		resume, _, _ = strings.Cut(resume, "\n")
		if !ok || !strings.Contains(resume, "--via batch") {
			t.Fatalf("resume command %q", resume)
		}
		if code := s.exec(nil, "cancel", s.output, "-c", s.cfgPath); code != ExitOK || !strings.Contains(s.stdout.String(), "canceling") && !strings.Contains(s.stdout.String(), "cancel") {
			t.Fatalf("cancel: exit %d\n%s%s", code, s.stdout.String(), s.stderr.String())
		}
		if code := s.exec(nil, strings.Fields(resume)[1:]...); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		st := s.stats("sb/m")
		if st.BatchOK != 400 || st.BatchDuplicateLive != 0 || st.BatchFailed == 0 {
			t.Errorf("sim stats %+v: want the cancelled lines resent and every prompt answered once", st)
		}
		var viaBatch int
		for _, r := range s.lines() {
			if r.Status == results.StatusOK && r.Via == "batch" {
				viaBatch++
			}
		}
		if viaBatch != 400 {
			t.Errorf("%d batch lines", viaBatch)
		}
		_ = sim.Digest
	})
}

// TestRunViaRefusesBadValues: an unknown --via, or --via batch with the output on stdout (its
// journal needs a file), is a usage error before anything is sent.
func TestRunViaRefusesBadValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, batchConfig("openai", "{}"), 5, 10)
		if code := s.exec(nil, "run", s.input, "-c", s.cfgPath, "--via", "later"); code != ExitUsage || !strings.Contains(s.stderr.String(), `--via "later": want realtime, batch or auto`) {
			t.Errorf("--via later: exit %d: %s", code, s.stderr.String())
		}
		if code := s.exec(nil, "run", s.input, "-c", s.cfgPath, "--via", "batch", "-o", "-"); code != ExitUsage || !strings.Contains(s.stderr.String(), "needs an output file") {
			t.Errorf("--via batch -o -: exit %d: %s", code, s.stderr.String())
		}
		if st := s.stats("sb/m"); st.Requests != 0 || st.BatchLines != 0 {
			t.Errorf("sent %+v", st)
		}
		if code := s.exec(nil, "cancel", filepath.Join(s.dir, "none.jsonl"), "-c", s.cfgPath); code != ExitUsage || !strings.Contains(s.stderr.String(), "no batch journal") {
			t.Errorf("cancel without a journal: exit %d: %s", code, s.stderr.String())
		}
	})
}
