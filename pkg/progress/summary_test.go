package progress_test

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

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

// fillSummary adds 1000 prompts to openai/gpt-4o-mini, one every 100 ms (latencies 1..1000 ms, 20
// failed), then 100 to anthropic/claude-haiku at once (all 2 s), 100 s in all.
func fillSummary(t *testing.T) (*progress.Summary, *clock) {
	t.Helper()
	c := newClock()
	s := progress.NewSummary(c.now)
	for i := 1; i <= 1000; i++ {
		c.advance(100 * time.Millisecond)
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
	s.SetCeiling("anthropic", "claude-haiku", 1)
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
	if r.CostUSD != 0.3765 { // 1000 × 0.0000765 + 100 × 0.003, rounded: no float noise
		t.Errorf("cost %v, want exactly 0.3765", r.CostUSD)
	}
	if !approx(r.RequestsPerSecond, 11) {
		t.Errorf("requests/s %v, want 11", r.RequestsPerSecond)
	}
	if len(r.Models) != 2 || r.Models[0].Provider != "anthropic" || r.Models[1].Model != "gpt-4o-mini" {
		t.Fatalf("models %+v, want anthropic then openai", r.Models)
	}
	a, o := r.Models[0], r.Models[1]
	// anthropic was busy for 2 s, less than one window: no share of its ceiling is claimed.
	if a.LatencyMeanMS != 2000 || a.LatencyP95MS != 2000 || a.BusySeconds != 2 || a.CeilingRPS != 1 || a.CeilingShare != nil {
		t.Errorf("anthropic %+v", a)
	}
	// Successful latencies are 21..1000 ms: mean 510.5 ms, p95 the 931st of 980 samples = 951 ms.
	if !approx(o.LatencyMeanMS, 510.5) {
		t.Errorf("openai mean %v ms, want 510.5", o.LatencyMeanMS)
	}
	if math.Abs(o.LatencyP95MS-951)/951 > 0.016 {
		t.Errorf("openai p95 %v ms, want 951 ±1.6%%", o.LatencyP95MS)
	}
	// Busy from the first prompt's start (100 ms - 1 ms) to the last completion (100 s): 99.901 s.
	// The limits allowed 12.5/s × (99.901 s + one 60 s window) = 1998.76 requests; 980 were ok.
	if !approx(o.BusySeconds, 99.901) || !approx(o.RequestsPerSecond, 1000/99.901) || o.CeilingRPS != 12.5 ||
		o.CeilingShare == nil || !approx(*o.CeilingShare, 980/1998.7625) {
		t.Errorf("openai busy %v s, rate %v, ceiling %v, share %v; want 99.901 s, 10.01/s, 12.5, %v",
			o.BusySeconds, o.RequestsPerSecond, o.CeilingRPS, o.CeilingShare, 980/1998.7625)
	}
	if o.OK != 980 || o.Failed != 20 || o.Requests != 1000 || o.RateLimited != 10 || o.Retries != 20 {
		t.Errorf("openai counts %+v", o)
	}

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"wall_seconds":100`, `"cost_usd":0.3765`, `"cost_usd":0.0765,`, `"latency_p95_ms":`, `"ceiling_share":0.49`, `"models":[`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	if strings.Count(string(b), `"ceiling_share"`) != 1 {
		t.Errorf("JSON should omit the share of a lane busy for less than a window: %s", b)
	}
}

// A lane that completes more than its sustained rate (the bucket starts full, a provider is generous)
// still shows at most 100%: the share is of what the limits allowed, burst included, and capped.
func TestSummaryCeilingShareNeverAbove100(t *testing.T) {
	for _, perSecond := range []int{1, 2, 5, 10} {
		c := newClock()
		s := progress.NewSummary(c.now)
		for range 120 { // two minutes
			for range perSecond {
				s.Add(progress.Outcome{Provider: "p", Model: "m", OK: true, Latency: time.Second})
			}
			c.advance(time.Second)
		}
		s.SetCeiling("p", "m", 1) // 60 RPM
		r := s.JSON()
		m := r.Models[0]
		if m.CeilingShare == nil || *m.CeilingShare > 1 {
			t.Fatalf("%d/s: share %v, want ≤ 1", perSecond, m.CeilingShare)
		}
		// 120 s busy (first start 1 s before the first completion): the limits allowed 60 × 3 = 180.
		want := min(float64(120*perSecond)/180, 1)
		if !approx(*m.CeilingShare, want) {
			t.Errorf("%d/s: share %v, want %v", perSecond, *m.CeilingShare, want)
		}
		var buf bytes.Buffer
		if err := s.Render(&buf); err != nil {
			t.Fatal(err)
		}
		if perSecond >= 2 && !strings.Contains(buf.String(), "100.0%") {
			t.Errorf("%d/s: a lane at its ceiling renders as 100.0%%:\n%s", perSecond, buf.String())
		}
	}
}

func TestSummaryUnknownCeilingIsDash(t *testing.T) {
	c := newClock()
	s := progress.NewSummary(c.now)
	for range 100 {
		s.Add(progress.Outcome{Provider: "p", Model: "m", OK: true, Latency: time.Second})
		c.advance(time.Second)
	}
	r := s.JSON()
	if r.Models[0].CeilingShare != nil || r.Models[0].CeilingRPS != 0 {
		t.Errorf("no ceiling known, yet %+v", r.Models[0])
	}
	var buf bytes.Buffer
	_ = s.Render(&buf)
	if !regexp.MustCompile(`(?m)^p/m .* –$`).MatchString(buf.String()) {
		t.Errorf("the share column should read – :\n%s", buf.String())
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
	// header, 2 lanes, total; blank; header, 2 lanes, total; wall time
	if len(lines) != 10 {
		t.Fatalf("rendered %d lines, want two tables of 4 and the wall time:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line %d is %d columns wide, more than 80: %q", i+1, n, l)
		}
	}
	for _, want := range []string{
		"anthropic/claude-haiku", "$0.30", "2.00s",
		"openai/gpt-4o-mini", "$0.0765", "49.0%", "10.01", "958ms",
		"TOTAL", "1080", "$0.3765", "11.00", "130,000", "170,000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "wall time") != 1 || !strings.HasSuffix(out, "wall time 1m40s\n") {
		t.Errorf("want exactly one wall time, 1m40s, at the end:\n%s", out)
	}
	// Aligned: each right-aligned column ends at the same offset on every row of the first table.
	for _, col := range []string{"OK", "COST", "REQ/S"} {
		end := strings.Index(lines[0], col) + len(col)
		for _, l := range lines[1:4] {
			if end > len(l) || l[end-1] == ' ' || (end < len(l) && l[end] != ' ') {
				t.Errorf("column %s (ending at %d) not aligned in %q", col, end, l)
			}
		}
	}
}

// On a narrow terminal, or with names too long for the table, every lane becomes a block of short
// lines that fit.
func TestSummaryRenderNarrow(t *testing.T) {
	s, _ := fillSummary(t)
	var buf bytes.Buffer
	if err := s.RenderWidth(&buf, 50); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for i, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > 50 {
			t.Errorf("line %d is %d columns wide, more than 50: %q", i+1, n, l)
		}
	}
	for _, want := range []string{"openai/gpt-4o-mini\n", "  980 ok, 20 failed, 10 429s, 20 retries\n",
		"49.0% of ceiling", "– of ceiling", "cost $0.3765, tokens 130,000 in, 170,000 out", "wall time 1m40s\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("narrow summary lacks %q:\n%s", want, out)
		}
	}

	c := newClock()
	long := progress.NewSummary(c.now)
	long.Add(progress.Outcome{Provider: "openrouter", Model: "meta-llama/llama-3.1-405b-instruct-with-a-long-suffix", OK: true})
	buf.Reset()
	_ = long.Render(&buf)
	for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("a long lane name still overflows 80 columns: %q", l)
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

// Prompts left unfinished add their retries to the totals through an "(unfinished)" row, so the
// rows add up; they count as neither ok nor failed.
func TestSummaryUnfinishedRetries(t *testing.T) {
	c := newClock()
	s := progress.NewSummary(c.now)
	s.Add(progress.Outcome{Provider: "p", Model: "m", OK: true, Retries: 2, Latency: time.Second})
	s.AddRateLimited("p", "m", 3)
	s.Add(progress.Outcome{Unfinished: true, Retries: 4})
	s.Finish()
	r := s.JSON()
	if r.OK != 1 || r.Failed != 0 || r.Retries != 6 || r.RateLimited != 3 || r.Unfinished == nil || r.Unfinished.Retries != 4 {
		t.Fatalf("report %+v, unfinished %+v", r, r.Unfinished)
	}
	var b bytes.Buffer
	if err := s.Render(&b); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\(unfinished\)\s+4$`).MatchString(b.String()) ||
		!regexp.MustCompile(`(?m)^TOTAL\s+1\s+0\s+3\s+6\s`).MatchString(b.String()) {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	if err := s.RenderWidth(&b, 30); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(unfinished)\n  4 retries\n") {
		t.Errorf("narrow layout:\n%s", b.String())
	}
}
