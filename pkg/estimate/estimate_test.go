package estimate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

func lane(rpm, tpm, rpd, conc int) *selector.Lane {
	return &selector.Lane{Provider: "p", Name: "m", InputPerMTok: 1, OutputPerMTok: 4, Concurrency: conc,
		Limits: selector.Limits{RPM: rpm, TPM: tpm, RPD: rpd}}
}

func TestWallTimeTakesTheBindingLimit(t *testing.T) {
	sec := time.Second
	cases := []struct {
		name      string
		l         *selector.Lane
		n, tokens int64
		latency   time.Duration
		want      time.Duration
		bound     Bound
	}{
		// A window admits its share at once, the next share a window (plus its 1 s guard) later.
		{"burst", lane(1200, 0, 0, 64), 600, 60000, sec, 9375*time.Millisecond + sec, BoundConcurrency},
		{"rpm", lane(1200, 0, 0, 64), 3000, 300000, sec, 2*61*sec + sec, BoundRPM},
		{"tpm", lane(1200, 60000, 0, 64), 600, 120000, sec, 61*sec + sec, BoundTPM},
		{"10 s window", &selector.Lane{Concurrency: 1000, Limits: selector.Limits{RPM: 3600, Window: 10 * sec}}, 1500, 0, sec,
			2*(10*sec+sec/6) + sec, BoundRPM},
		{"1 s quanta", &selector.Lane{Concurrency: 1000, Limits: selector.Limits{RPM: 600, Quantum: sec}}, 300, 0, sec,
			29*(sec+sec/60) + sec + 1, BoundRPM}, // rounded up to the nanosecond
		{"concurrency", lane(0, 0, 0, 10), 100, 0, 2 * sec, 20*sec + 2*sec, BoundConcurrency},
		{"rpd", lane(0, 0, 100, 10), 250, 0, sec, 2*24*time.Hour + sec, BoundRPD},
		{"none", lane(0, 0, 0, 0), 0, 0, sec, 0, BoundNone},
	}
	for _, c := range cases {
		got, b := WallTime(c.l, c.n, c.tokens, c.latency)
		if got != c.want || b != c.bound {
			t.Errorf("%s: %s %q, want %s %q", c.name, got, b, c.want, c.bound)
		}
	}
}

func TestTypicalWithoutEvidence(t *testing.T) {
	var tl Tally
	for range 10 {
		tl.Add(100, 200, model.Small, 0)
	}
	e := tl.Estimate(lane(6, 0, 0, 16), nil)
	if e.From != FromTypical || e.Results != 0 {
		t.Errorf("from %q (%d)", e.From, e.Results)
	}
	// 10 × 200 × 0.33 = 660 expected; 2,000 at most. Cost = (1,000 × 1 + out × 4) / 1e6.
	if e.Expected.OutputTokens != 660 || e.AtMost.OutputTokens != 2000 {
		t.Errorf("output %d / %d, want 660 / 2000", e.Expected.OutputTokens, e.AtMost.OutputTokens)
	}
	if e.Expected.CostUSD != 0.00364 || e.AtMost.CostUSD != 0.009 {
		t.Errorf("cost %v / %v, want 0.00364 / 0.009", e.Expected.CostUSD, e.AtMost.CostUSD)
	}
	if e.Expected.Bound != BoundRPM || e.Expected.Guess {
		t.Errorf("6 RPM is known: bound %q guess %v", e.Expected.Bound, e.Expected.Guess)
	}
	if g := (&Tally{}).Estimate(lane(0, 0, 0, 1), nil); g.Prompts != 0 || g.Expected.WallTime != 0 {
		t.Errorf("an empty tally estimates %+v", g)
	}
	var slow Tally
	slow.Add(10, 80, model.Small, 0)
	if e := slow.Estimate(lane(0, 0, 0, 1), nil); !e.Expected.Guess || e.Expected.Bound != BoundConcurrency {
		t.Errorf("no limit and no measured latency must be a guess: %+v", e.Expected)
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvidenceMatchesPromptsOfTheBatch(t *testing.T) {
	path := writeFile(t, strings.Join([]string{
		`{"custom_id":"a","status":"ok","provider":"p","model":"m","usage":{"input_tokens":5,"output_tokens":30},"latency_ms":500}`,
		`{"custom_id":"b","status":"error","error":{"type":"x","message":"y"},"attempts":1}`,
		`{"custom_id":"c","status":"ok","provider":"p","model":"m","usage":{"input_tokens":5,"output_tokens":99},"latency_ms":700}`,
		`{"custom_id":"c","status":"ok","provider":"p","model":"m","usage":{"input_tokens":5,"output_tokens":10},"latency_ms":1500}`,
		`{"custom_id":"d","status":"ok","provider":"q","model":"m2","usage":{"output_tokens":7}}`,
		`{"custom_id":"torn","status":"ok","provi`,
	}, "\n"))
	ev := NewEvidence(FromResults)
	if err := ev.ReadFile(path, false); err != nil {
		t.Fatal(err)
	}
	// c's later line supersedes the earlier one; the torn tail and the error line count for nothing.
	if ev.Results() != 3 || ev.MeanOutput("p", "m") != 20 || !ev.Has("q", "m2") || ev.Has("x", "y") {
		t.Fatalf("results %d, mean %v", ev.Results(), ev.MeanOutput("p", "m"))
	}
	var tl Tally
	for _, id := range []string{"a", "c", "new1", "new2"} {
		ev.Match(id, 100)
		tl.Add(10, 100, model.Small, ev.MeanOutput("p", "m"))
	}
	e := tl.Estimate(lane(0, 0, 0, 4), ev)
	// a and c used 30 + 10 of their 200 max_tokens: 20% of the batch's 400.
	if e.From != FromResults || e.Results != 2 || e.Expected.OutputTokens != 80 {
		t.Errorf("from %q (%d results), expected output %d; want results (2), 80", e.From, e.Results, e.Expected.OutputTokens)
	}
	// Latency measured on a (500 ms) and c (1.5 s): 1 s each, 4 prompts over 4 slots, plus the last.
	if e.LatencyFrom != 2 || e.Expected.Guess || e.Expected.WallTime != 2*time.Second {
		t.Errorf("latency from %d, wall %s guess %v; want 2, 2s, no guess", e.LatencyFrom, e.Expected.WallTime, e.Expected.Guess)
	}

	// No prompt of the batch answered, but results of the model: the mean answer, capped by max_tokens.
	var other Tally
	other.Add(10, 5, model.Small, ev.MeanOutput("q", "m2"))
	other.Add(10, 50, model.Small, ev.MeanOutput("q", "m2"))
	q := &selector.Lane{Provider: "q", Name: "m2"}
	if e := other.Estimate(q, ev); e.From != FromResults || e.Expected.OutputTokens != 12 {
		t.Errorf("mean-length evidence: from %q, output %d; want results, 5 + 7 = 12", e.From, e.Expected.OutputTokens)
	}
}

func TestEvidenceRejectsOtherFiles(t *testing.T) {
	path := writeFile(t, `{"custom_id":"a","status":"ok"}`+"\n"+`{"id":"batch_req_1","custom_id":"a","response":{}}`+"\n")
	err := NewEvidence(FromCalibration).ReadFile(path, false)
	if err == nil || !strings.Contains(err.Error(), path+":2: not an llmbatch result line") {
		t.Errorf("got %v", err)
	}
	if err := NewEvidence(FromResults).ReadFile(filepath.Join(t.TempDir(), "missing"), true); err != nil {
		t.Errorf("a missing job output is no error: %v", err)
	}
}

func TestTotalIsTheSlowestLaneAndTheWeakestSource(t *testing.T) {
	tot := Total([]LaneEstimate{
		{Prompts: 2, From: FromResults, Results: 2, Expected: Figures{OutputTokens: 10, CostUSD: 0.1, WallTime: time.Minute, Bound: BoundRPM},
			AtMost: Figures{OutputTokens: 20, CostUSD: 0.2, WallTime: 2 * time.Minute, Bound: BoundRPM}},
		{},
		{Prompts: 1, From: FromTypical, Expected: Figures{OutputTokens: 5, CostUSD: 0.2, WallTime: time.Second, Bound: BoundConcurrency, Guess: true},
			AtMost: Figures{OutputTokens: 9, CostUSD: 0.1, WallTime: 3 * time.Minute, Bound: BoundConcurrency, Guess: true}},
	})
	if tot.Prompts != 3 || tot.From != FromTypical || tot.Results != 2 || tot.Expected.CostUSD != 0.3 || tot.AtMost.CostUSD != 0.3 ||
		tot.Expected.WallTime != time.Minute || tot.Expected.Guess || !tot.AtMost.Guess || tot.AtMost.OutputTokens != 29 {
		t.Errorf("total %+v", tot)
	}
}
