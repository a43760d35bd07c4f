package progress_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/progress"
)

// clock is a manual clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// fillSummary adds 1000 prompts to openai/gpt-4o-mini (latencies 1..1000 ms, 20 failed) and 100 to
// anthropic/claude-haiku (all 2 s), over 100 s.
func fillSummary(t *testing.T) (*progress.Summary, *clock) {
	t.Helper()
	c := newClock()
	s := progress.NewSummary(c.now)
	for i := 1; i <= 1000; i++ {
		o := progress.Outcome{Provider: "openai", Model: "gpt-4o-mini", OK: i > 20, InputTokens: 30, OutputTokens: 120,
			CostUSD: 0.0000765, Latency: time.Duration(i) * time.Millisecond}
		if i%100 == 0 {
			o.Retries, o.RateLimited = 2, 1
		}
		s.Add(o)
	}
	for range 100 {
		s.Add(progress.Outcome{Provider: "anthropic", Model: "claude-haiku", OK: true, InputTokens: 1000,
			OutputTokens: 500, CostUSD: 0.003, Latency: 2 * time.Second})
	}
	s.SetCeiling("openai", "gpt-4o-mini", 12.5) // 750 RPM
	c.advance(100 * time.Second)
	s.Finish()
	c.advance(time.Hour) // after Finish the wall time stays
	return s, c
}

func TestSummaryJSON(t *testing.T) {
	s, _ := fillSummary(t)
	r := s.JSON()
	if r.WallSeconds != 100 || r.Requests != 1100 || r.OK != 1080 || r.Failed != 20 ||
		r.InputTokens != 130_000 || r.OutputTokens != 170_000 || r.RateLimited != 10 || r.Retries != 20 {
		t.Errorf("totals %+v", r)
	}
	if !approx(r.CostUSD, 1000*0.0000765+100*0.003) {
		t.Errorf("cost %v, want %v", r.CostUSD, 1000*0.0000765+100*0.003)
	}
	if !approx(r.RequestsPerSecond, 11) {
		t.Errorf("requests/s %v, want 11", r.RequestsPerSecond)
	}
	if len(r.Models) != 2 || r.Models[0].Provider != "anthropic" || r.Models[1].Model != "gpt-4o-mini" {
		t.Fatalf("models %+v, want anthropic then openai", r.Models)
	}
	a, o := r.Models[0], r.Models[1]
	if a.LatencyMeanMS != 2000 || a.LatencyP95MS != 2000 || a.CeilingRPS != 0 || a.CeilingShare != 0 {
		t.Errorf("anthropic %+v", a)
	}
	// Successful latencies are 21..1000 ms: mean 510.5 ms, p95 the 931st of 980 samples = 951 ms.
	if !approx(o.LatencyMeanMS, 510.5) {
		t.Errorf("openai mean %v ms, want 510.5", o.LatencyMeanMS)
	}
	if math.Abs(o.LatencyP95MS-951)/951 > 0.016 {
		t.Errorf("openai p95 %v ms, want 951 ±1.6%%", o.LatencyP95MS)
	}
	if !approx(o.RequestsPerSecond, 10) || o.CeilingRPS != 12.5 || !approx(o.CeilingShare, 0.8) {
		t.Errorf("openai rate %v of ceiling %v = %v, want 10 of 12.5 = 0.8", o.RequestsPerSecond, o.CeilingRPS, o.CeilingShare)
	}
	if o.OK != 980 || o.Failed != 20 || o.Requests != 1000 || o.RateLimited != 10 || o.Retries != 20 {
		t.Errorf("openai counts %+v", o)
	}

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"wall_seconds":100`, `"cost_usd":`, `"latency_p95_ms":`, `"ceiling_share":0.8`, `"models":[`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	if strings.Count(string(b), `"ceiling_rps"`) != 1 {
		t.Errorf("JSON should omit the unknown ceiling: %s", b)
	}
}

func TestSummaryRender(t *testing.T) {
	s, _ := fillSummary(t)
	var buf bytes.Buffer
	if err := s.Render(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("rendered %d lines, want header, 2 models, total, wall time:\n%s", len(lines), out)
	}
	for _, want := range []string{
		"anthropic", "claude-haiku", "$0.3000", "2.00s",
		"gpt-4o-mini", "$0.0765", "80.0%", "10.00", "958ms",
		"TOTAL", "1080", "$0.3765", "11.00",
		"wall time 1m40s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// Aligned: each column starts at the same offset on every row of the table.
	for _, col := range []string{"MODEL", "OK", "COST", "REQ/S"} {
		at := strings.Index(lines[0], col)
		for _, l := range lines[1:3] {
			if at >= len(l) || l[at-1] != ' ' || l[at] == ' ' {
				t.Errorf("column %s (offset %d) not aligned in %q", col, at, l)
			}
		}
	}
}

func TestSummaryConcurrentAdds(t *testing.T) {
	c := newClock()
	s := progress.NewSummary(c.now)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s.Add(progress.Outcome{Provider: "p", Model: "m", OK: true, InputTokens: 1, Latency: time.Millisecond})
			}
		})
	}
	wg.Wait()
	if r := s.JSON(); r.OK != 8000 || r.InputTokens != 8000 {
		t.Errorf("after concurrent adds: %+v", r)
	}
}
