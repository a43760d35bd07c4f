package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchplan"
	"github.com/llmbatch/llmbatch/pkg/money"
)

// batchSimJob copies the prompts and testdata/batch.sim.yaml into a temporary directory, with a
// machine history (XDG_STATE_HOME) in which sim-gemini's last jobs took 5 minutes (its config says
// 1m; the others have no history and keep their configured 1m).
func batchSimJob(t *testing.T) (f *Factory, input, cfg string, stdout, stderr *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"prompts.jsonl", "batch.sim.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"XDG_STATE_HOME": filepath.Join(dir, "state")}
	h := batchplan.NewHistory()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var samples []batchplan.Sample
	for i, took := range []time.Duration{4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		samples = append(samples, batchplan.Sample{Provider: "sim-gemini", Job: "lbold", Chunk: "c" + string(rune('1'+i)),
			Ended: at.Add(time.Duration(i) * time.Hour), Took: took})
	}
	if err := h.AppendFile(batchplan.HistoryPath(func(k string) string { return env[k] }), samples); err != nil {
		t.Fatal(err)
	}
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	f = &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: stdout, ErrOut: stderr},
		Getenv: func(k string) string { return env[k] }, Now: time.Now}
	return f, filepath.Join(dir, "prompts.jsonl"), filepath.Join(dir, "batch.sim.yaml"), stdout, stderr
}

// TestSelectViaShowsRoutePerPrompt: select --via auto --deadline 2m sends the OpenAI-dialect lanes
// (turnaround 1m from the config) as batch at half price and sim-gemini (learned: 5m) realtime at
// full price; each line's cost_usd is its route's price and realtime_cost_usd the realtime one.
func TestSelectViaShowsRoutePerPrompt(t *testing.T) {
	f, input, cfg, stdout, _ := batchSimJob(t)
	if code := Execute(context.Background(), f, []string{"select", input, "-c", cfg, "--json", "--via", "auto", "--deadline", "2m"}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, f.IO.ErrOut)
	}
	routes := map[string]int{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var l selectJSON
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		routes[l.Provider+" "+l.Route]++
		switch l.Route {
		case "batch":
			if l.Provider == "sim-gemini" || l.TurnaroundSeconds != 60 {
				t.Errorf("%s: %s/%s batch with turnaround %vs", l.CustomID, l.Provider, l.Model, l.TurnaroundSeconds)
			}
			// cost is half the realtime cost, each rounded to 1e-10 once.
			if math.Abs(l.CostUSD*2-l.RealtimeCostUSD) > 2e-10 || l.CostUSD <= 0 {
				t.Errorf("%s: batch cost %v, realtime %v", l.CustomID, l.CostUSD, l.RealtimeCostUSD)
			}
		case "realtime":
			if l.Provider != "sim-gemini" || l.CostUSD != l.RealtimeCostUSD || l.TurnaroundSeconds != 0 {
				t.Errorf("%s: %s realtime at %v (realtime %v)", l.CustomID, l.Provider, l.CostUSD, l.RealtimeCostUSD)
			}
		default:
			t.Errorf("%s: route %q", l.CustomID, l.Route)
		}
	}
	if routes["sim-openai batch"] == 0 || routes["sim-gemini realtime"] == 0 || len(routes) != 2 {
		t.Errorf("routes %v: want sim-openai batch and sim-gemini realtime", routes)
	}

	// The text table names each lane's route, its turnaround and where it comes from.
	stdout.Reset()
	if code := Execute(context.Background(), f, []string{"select", input, "-c", cfg, "--via", "auto", "--deadline", "2m"}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, f.IO.ErrOut)
	}
	text := stdout.String()
	for _, want := range []string{"ROUTE", "batch (~1m0s, realtime $", "sim-openai/gpt-think   reasoning", "batch, turnaround 1m0s (config)",
		"realtime, concurrency", "Route (--via auto): 64 prompts batch at "} {
		if !strings.Contains(text, want) {
			t.Errorf("select output lacks %q:\n%s", want, text)
		}
	}
}

// TestEstimateViaAutoSplit: estimate --via auto --deadline 2m shows the split between the routes
// and both prices: the batch lanes at half their realtime cost, the realtime lane unchanged, the
// totals adding up, and the all-realtime figures equal to a plain estimate's.
func TestEstimateViaAutoSplit(t *testing.T) {
	f, input, cfg, stdout, _ := batchSimJob(t)
	plain := estimateJSONOf(t, f, stdout, input, "-c", cfg, "--deadline", "2m")
	got := estimateJSONOf(t, f, stdout, input, "-c", cfg, "--via", "auto", "--deadline", "2m")
	r := got.Routes
	if r == nil || r.Via != "auto" {
		t.Fatalf("routes %+v", r)
	}
	if r.Batch.Prompts+r.Realtime.Prompts != got.Prompts || r.Batch.Prompts == 0 || r.Realtime.Prompts == 0 {
		t.Fatalf("split %d batch + %d realtime of %d prompts", r.Batch.Prompts, r.Realtime.Prompts, got.Prompts)
	}
	if r.RealtimeOnly.Expected.CostUSD != plain.Expected.CostUSD || r.RealtimeOnly.AtMost.CostUSD != plain.AtMost.CostUSD {
		t.Errorf("all realtime %+v, plain estimate expected %v at most %v", r.RealtimeOnly, plain.Expected.CostUSD, plain.AtMost.CostUSD)
	}
	if sum := money.Round(r.Batch.Expected.CostUSD + r.Realtime.Expected.CostUSD); math.Abs(sum-got.Expected.CostUSD) > 1e-10 {
		t.Errorf("expected cost %v != batch %v + realtime %v", got.Expected.CostUSD, r.Batch.Expected.CostUSD, r.Realtime.Expected.CostUSD)
	}
	if got.CostUSD != got.AtMost.CostUSD || got.AtMost.CostUSD >= plain.AtMost.CostUSD {
		t.Errorf("cost_usd %v at most %v (all realtime %v)", got.CostUSD, got.AtMost.CostUSD, plain.AtMost.CostUSD)
	}
	var batchPrompts int64
	for _, m := range got.Models {
		switch m.Route {
		case "batch":
			batchPrompts += m.Prompts
			if m.Provider != "sim-openai" || m.TurnaroundSeconds != 60 || m.TurnaroundFrom != "config" || m.Discount != 0.5 {
				t.Errorf("%s/%s: %+v", m.Provider, m.Model, m.laneRouteJSON)
			}
			for _, pair := range [][2]float64{{m.Expected.CostUSD, m.Realtime.Expected.CostUSD}, {m.AtMost.CostUSD, m.Realtime.AtMost.CostUSD}} {
				if math.Abs(pair[0]*2-pair[1]) > 2e-10 {
					t.Errorf("%s/%s: batch %v vs realtime %v", m.Provider, m.Model, pair[0], pair[1])
				}
			}
			// One wave of jobs: the expected turnaround (a job's time does not depend on the answers).
			if m.Expected.WallTimeSeconds != 60 || m.AtMost.WallTimeSeconds != 60 || m.Expected.WallTimeBound != "batch" {
				t.Errorf("%s/%s: wall %+v / %+v", m.Provider, m.Model, m.Expected, m.AtMost)
			}
		case "realtime":
			if m.Provider != "sim-gemini" || !strings.Contains(m.Reason, "expected turnaround 5m0s (learned from 3 jobs) misses --deadline 2m0s") {
				t.Errorf("%s/%s realtime: %q", m.Provider, m.Model, m.Reason)
			}
			if m.Expected.CostUSD != m.Realtime.Expected.CostUSD {
				t.Errorf("%s/%s: realtime lane at %v, realtime price %v", m.Provider, m.Model, m.Expected.CostUSD, m.Realtime.Expected.CostUSD)
			}
		default:
			t.Errorf("%s/%s: route %q", m.Provider, m.Model, m.Route)
		}
	}
	if batchPrompts != r.Batch.Prompts {
		t.Errorf("models' batch prompts %d, split %d", batchPrompts, r.Batch.Prompts)
	}

	// The text shows the same split, with both prices.
	stdout.Reset()
	if code := Execute(context.Background(), f, []string{"estimate", input, "-c", cfg, "--via", "auto", "--deadline", "2m"}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, f.IO.ErrOut)
	}
	text := stdout.String()
	for _, want := range []string{
		"Routes (--via auto, --deadline 2m0s):",
		"sim-gemini/gemini-sim  realtime",
		"1m0s (config)",
		"Split: " + num(r.Batch.Prompts) + " prompts batch (expected " + usd(r.Batch.Expected.CostUSD),
		num(r.Realtime.Prompts) + " prompts realtime (expected " + usd(r.Realtime.Expected.CostUSD),
		"All realtime: expected " + usd(plain.Expected.CostUSD) + ", at most " + usd(plain.AtMost.CostUSD),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("estimate output lacks %q:\n%s", want, text)
		}
	}

	// Without --via nothing moves: the route fields say realtime and the costs are the plain ones.
	if plain.Routes == nil || plain.Routes.Batch.Prompts != 0 || plain.Routes.Realtime.Prompts != plain.Prompts {
		t.Errorf("plain routes %+v", plain.Routes)
	}
}

// TestDryRunsRefuseBadVia: an unknown --via is a usage error naming the flag.
func TestDryRunsRefuseBadVia(t *testing.T) {
	f, input, cfg, _, stderr := batchSimJob(t)
	for _, c := range []string{"select", "estimate"} {
		stderr.Reset()
		if code := Execute(context.Background(), f, []string{c, input, "-c", cfg, "--via", "soon"}); code != ExitUsage ||
			!strings.Contains(stderr.String(), `--via "soon": want realtime, batch or auto`) {
			t.Errorf("%s --via soon: exit %d: %s", c, code, stderr)
		}
	}
}

// TestRunLearnsTurnaround: a run through --via batch records the turnaround of every job it
// watched in the machine's history; with three such jobs known, auto takes the learned turnaround
// (10m in the simulator) instead of the configured 24h, so a 1h deadline now goes batch.
func TestRunLearnsTurnaround(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Jobs of at most 40 prompts: 120 prompts make at least three jobs to learn from.
		cfg := strings.Replace(batchConfig("openai", "{turnaround: 10m}"), "turnaround: 24h}", "turnaround: 24h, max_requests: 40}", 1)
		s := newSimRun(t, cfg, 120, 40)
		state := filepath.Join(s.dir, "state")
		env := func(k string) string {
			if k == "XDG_STATE_HOME" {
				return state
			}
			return ""
		}
		exec := func(args ...string) {
			t.Helper()
			f := s.factory(nil)
			f.Getenv = env
			if code := Execute(context.Background(), f, append([]string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet"}, args...)); code != ExitOK {
				t.Fatalf("run %v: exit %d: %s", args, code, s.stderr.String())
			}
		}
		// Before any job: the configured 24h misses a 1h deadline, so the lane goes realtime.
		exec("--via", "auto", "--deadline", "1h")
		if st := s.stats("sb/m"); st.Requests != 120 || st.BatchLines != 0 {
			t.Fatalf("first auto run: %+v", st)
		}
		exec("--via", "batch", "--fresh")
		h, err := batchplan.Load(batchplan.HistoryPath(env), "")
		if err != nil {
			t.Fatal(err)
		}
		d, n, ok := h.Expected("sb")
		if !ok || n < 3 || d < 10*time.Minute || d > 15*time.Minute {
			t.Fatalf("learned %v from %d jobs (ok %v): want about the simulator's 10m from at least 3", d, n, ok)
		}
		before := s.stats("sb/m")
		exec("--via", "auto", "--deadline", "1h", "--fresh")
		if st := s.stats("sb/m"); st.Requests != before.Requests || st.BatchOK-before.BatchOK != 120 {
			t.Errorf("auto with the learned turnaround: %+v (before %+v): want all 120 as batch", st, before)
		}
	})
}
