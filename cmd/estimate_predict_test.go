package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/estimate"
	"github.com/llmbatch/llmbatch/pkg/results"
)

// demoJob copies the demo's prompts and simulated providers into a temporary directory and returns
// a factory for them (the `type: sim` providers are served in process, on the test's clock).
func demoJob(t *testing.T) (f *Factory, input, cfg, output string, stdout, stderr *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"prompts.jsonl", "providers.sim.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	f = &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: stdout, ErrOut: stderr},
		Getenv: func(string) string { return "" }, Now: time.Now}
	return f, filepath.Join(dir, "prompts.jsonl"), filepath.Join(dir, "providers.sim.yaml"),
		filepath.Join(dir, "prompts.results.jsonl"), stdout, stderr
}

func estimateJSONOf(t *testing.T, f *Factory, stdout *bytes.Buffer, args ...string) estimateJSON {
	t.Helper()
	stdout.Reset()
	if code := Execute(context.Background(), f, append([]string{"estimate", "--json"}, args...)); code != ExitOK {
		t.Fatalf("estimate %v: exit %d: %s", args, code, f.IO.ErrOut)
	}
	var got estimateJSON
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	return got
}

// actualCosts sums the cost of the output's lines, in total and per provider/model.
func actualCosts(t *testing.T, path string) (float64, map[string]float64) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var total float64
	byLane := map[string]float64{}
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var r results.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Status != results.StatusOK {
			t.Fatalf("the demo run left an error line: %s", sc.Text())
		}
		total += r.CostUSD
		byLane[r.Provider+"/"+r.Model] += r.CostUSD
	}
	return total, byLane
}

// Without any earlier result, the demo's estimate predicts the following run within 2× in cost and
// wall time, and its at-most cost (in total and per model) is never below what the run spent. Once
// the output holds results, the estimate rests on them and predicts the cost within 5%.
func TestEstimatePredictsTheDemoRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, input, cfg, output, stdout, stderr := demoJob(t)
		before := estimateJSONOf(t, f, stdout, input, "-c", cfg)
		if before.ExpectedFrom != estimate.FromTypical || before.Results != 0 {
			t.Errorf("no results yet, but expected_from %q (%d results)", before.ExpectedFrom, before.Results)
		}
		if before.CostUSD != before.AtMost.CostUSD || before.OutputTokens != before.AtMost.OutputTokens ||
			before.WallTimeSeconds != before.AtMost.WallTimeSeconds {
			t.Errorf("the old top-level fields must equal at_most's: %+v", before.estimatePlanJSON)
		}

		start := time.Now()
		if code := Execute(context.Background(), f, []string{"run", input, "-c", cfg, "--quiet"}); code != ExitOK {
			t.Fatalf("run: exit %d: %s", code, stderr)
		}
		elapsed := time.Since(start)
		actual, byLane := actualCosts(t, output)
		t.Logf("expected $%v, at most $%v, actual $%v; wall time expected %.1fs, at most %.1fs, actual %s",
			before.Expected.CostUSD, before.AtMost.CostUSD, actual, before.Expected.WallTimeSeconds,
			before.AtMost.WallTimeSeconds, elapsed)
		if r := before.Expected.CostUSD / actual; r < 0.5 || r > 2 {
			t.Errorf("expected cost $%v is %.2f× the run's $%v, want within 2×", before.Expected.CostUSD, r, actual)
		}
		if r := before.Expected.WallTimeSeconds / elapsed.Seconds(); r < 0.5 || r > 2 {
			t.Errorf("expected wall time %.1fs is %.2f× the run's %s, want within 2×", before.Expected.WallTimeSeconds, r, elapsed)
		}
		if before.AtMost.CostUSD < actual {
			t.Errorf("at most $%v, below the run's $%v", before.AtMost.CostUSD, actual)
		}
		for _, m := range before.Models {
			if spent := byLane[m.Provider+"/"+m.Model]; m.AtMost.CostUSD < spent {
				t.Errorf("%s/%s: at most $%v, below the $%v the run spent on it", m.Provider, m.Model, m.AtMost.CostUSD, spent)
			}
			if m.Expected.CostUSD > m.AtMost.CostUSD || m.Expected.OutputTokens > m.AtMost.OutputTokens {
				t.Errorf("%s/%s: expected above at most: %+v / %+v", m.Provider, m.Model, m.Expected, m.AtMost)
			}
		}

		// The job is done: its estimate covers nothing more (run would send nothing).
		after := estimateJSONOf(t, f, stdout, input, "-c", cfg)
		if after.Done != 237 || after.Prompts != 0 || after.Expected.CostUSD != 0 || after.AtMost.CostUSD != 0 {
			t.Errorf("after the run: %d done, %d prompts, $%v expected, $%v at most; want 237 done, nothing left",
				after.Done, after.Prompts, after.Expected.CostUSD, after.AtMost.CostUSD)
		}

		// With --fresh (as run --fresh) every prompt is estimated, from the output's results.
		fresh := estimateJSONOf(t, f, stdout, input, "-c", cfg, "--fresh")
		if fresh.Done != 0 || fresh.Prompts != 237 || fresh.ExpectedFrom != estimate.FromResults {
			t.Errorf("--fresh: %d done, %d prompts, expected from %q; want 0, 237, results", fresh.Done, fresh.Prompts, fresh.ExpectedFrom)
		}
		if r := fresh.Expected.CostUSD / actual; r < 0.95 || r > 1.05 {
			t.Errorf("--fresh: from the run's results the expected cost $%v is %.3f× the run's $%v, want within 5%%", fresh.Expected.CostUSD, r, actual)
		}

		// Resumed with 100 answers kept: only the 137 left are estimated, from those results.
		data, err := os.ReadFile(output)
		if err != nil {
			t.Fatal(err)
		}
		kept := bytes.SplitAfter(data, []byte("\n"))[:100]
		if err := os.WriteFile(output, bytes.Join(kept, nil), 0o644); err != nil {
			t.Fatal(err)
		}
		keptCost, _ := actualCosts(t, output)
		resumed := estimateJSONOf(t, f, stdout, input, "-c", cfg)
		if resumed.Done != 100 || resumed.Prompts != 137 || resumed.ExpectedFrom != estimate.FromResults {
			t.Errorf("resumed: %d done, %d prompts, expected from %q; want 100, 137, results", resumed.Done, resumed.Prompts, resumed.ExpectedFrom)
		}
		if r := (keptCost + resumed.Expected.CostUSD) / actual; r < 0.8 || r > 1.2 {
			t.Errorf("resumed: the kept $%v plus the expected $%v is %.2f× the job's $%v, want within 20%%", keptCost, resumed.Expected.CostUSD, r, actual)
		}
		// The run's 237 answers given with --calibrate to a fresh job predict it within 5%.
		full := filepath.Join(filepath.Dir(output), "full.results.jsonl")
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
		calib := estimateJSONOf(t, f, stdout, input, "-c", cfg, "-o", filepath.Join(filepath.Dir(output), "new.jsonl"), "--calibrate", full)
		if calib.ExpectedFrom != estimate.FromCalibration || calib.Done != 0 || calib.Prompts != 237 {
			t.Errorf("--calibrate: expected_from %q, %d done of %d; want calibration, 0 of 237", calib.ExpectedFrom, calib.Done, calib.Prompts)
		}
		if r := calib.Expected.CostUSD / actual; r < 0.95 || r > 1.05 {
			t.Errorf("from the run's results the expected cost $%v is %.3f× the run's $%v, want within 5%%", calib.Expected.CostUSD, r, actual)
		}
	})
}

func TestEstimateTextSaysWhereTheExpectedOutputComesFrom(t *testing.T) {
	f, input, cfg, _, stdout, _ := demoJob(t)
	if code := Execute(context.Background(), f, []string{"estimate", input, "-c", cfg}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, f.IO.ErrOut)
	}
	out := stdout.String()
	for _, want := range []string{"expected", "at most", "typical ratio", "Expected output: a typical share of max_tokens per category",
		"At most: every prompt uses its whole max_tokens"} {
		if !strings.Contains(out, want) {
			t.Errorf("estimate lacks %q:\n%s", want, out)
		}
	}
}

func TestEstimateCalibrateErrors(t *testing.T) {
	f, input, cfg, output, _, stderr := demoJob(t)
	bad := filepath.Join(filepath.Dir(output), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"custom_id":"a","status":"ok"}`+"\n"+`{"not":"a result"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		bad: bad + ":2: not an llmbatch result line",
		filepath.Join(filepath.Dir(output), "no"): "--calibrate: results: open",
	} {
		stderr.Reset()
		if code := Execute(context.Background(), f, []string{"estimate", input, "-c", cfg, "--calibrate", file}); code != ExitUsage {
			t.Errorf("--calibrate %s: exit %d, want 2", file, code)
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("--calibrate %s: stderr %q lacks %q", file, stderr.String(), want)
		}
	}
}

// estimate --sample 20 sends 20 prompts drawn across the models, writes their results to the job's
// output (run sends them no more) and predicts the whole job's cost and the following run's wall
// time within ±15%.
func TestEstimateSamplePredictsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, input, cfg, output, stdout, stderr := demoJob(t)
		got := estimateJSONOf(t, f, stdout, input, "-c", cfg, "--sample", "20")
		if got.ExpectedFrom != estimate.FromSample || got.Results != 20 {
			t.Errorf("expected_from %q from %d results, want sample, 20", got.ExpectedFrom, got.Results)
		}
		models := 0
		for _, m := range got.Models {
			if m.Results > 0 {
				models++
			}
		}
		if models != len(got.Models) {
			t.Errorf("the sample reached %d of the plan's %d models", models, len(got.Models))
		}
		if !strings.Contains(stderr.String(), "sample: sent 20 prompts (20 ok, 0 failed)") {
			t.Errorf("stderr lacks the sample's report: %s", stderr)
		}
		sampleCost, _ := actualCosts(t, output)
		data, _ := os.ReadFile(output)
		if n := bytes.Count(data, []byte("\n")); n != 20 {
			t.Fatalf("the output holds %d lines after the sample, want 20", n)
		}

		stderr.Reset()
		start := time.Now()
		if code := Execute(context.Background(), f, []string{"run", input, "-c", cfg, "--quiet"}); code != ExitOK {
			t.Fatalf("run: exit %d: %s", code, stderr)
		}
		elapsed := time.Since(start)
		total, _ := actualCosts(t, output)
		t.Logf("expected $%v and %.1fs; the sample cost $%v, the job $%v; the run took %s",
			got.Expected.CostUSD, got.Expected.WallTimeSeconds, sampleCost, total, elapsed)
		if r := got.Expected.CostUSD / total; r < 0.85 || r > 1.15 {
			t.Errorf("expected cost $%v is %.3f× the job's $%v, want within ±15%%", got.Expected.CostUSD, r, total)
		}
		if r := got.Expected.WallTimeSeconds / elapsed.Seconds(); r < 0.85 || r > 1.15 {
			t.Errorf("expected wall time %.1fs is %.3f× the run's %s, want within ±15%%", got.Expected.WallTimeSeconds, r, elapsed)
		}
		if got.AtMost.CostUSD < total {
			t.Errorf("at most $%v, below the job's $%v", got.AtMost.CostUSD, total)
		}
	})
}

func TestSamplerDrawsAcrossLanesByWeight(t *testing.T) {
	s := newSampler(10)
	for i := range 1000 {
		s.add(int32(i%3), i+1, fmt.Sprint(i)) // three lanes, 333-334 prompts each
	}
	picked := s.pick(func(l int32) float64 { return []float64{0, 1, 9}[l] })
	per := map[int]int{}
	for i, p := range picked {
		per[(p.line-1)%3]++
		if i > 0 && p.line <= picked[i-1].line {
			t.Fatalf("not in input order: %v", picked)
		}
	}
	// one each first, then the other 7 by weight 0:1:9 → 0.7 and 6.3 → 1 + 0, 1 + 1, 1 + 6 (largest remainder to lane 1).
	if len(picked) != 10 || per[0] != 1 || per[1] != 2 || per[2] != 7 {
		t.Errorf("picked %d: %v", len(picked), per)
	}
	if again := newSampler(10); true {
		for i := range 1000 {
			again.add(int32(i%3), i+1, fmt.Sprint(i))
		}
		if p2 := again.pick(func(l int32) float64 { return []float64{0, 1, 9}[l] }); !slices.Equal(p2, picked) {
			t.Errorf("the draw is not reproducible")
		}
	}
}
