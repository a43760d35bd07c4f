package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/report"
	"github.com/llmbatch/llmbatch/pkg/results"
)

// reportConfig: two lanes sharing the batch (--prefer speed). flaky claims 300 RPM while the
// simulator allows 60 without telling (no limit headers: it answers 429s until the client adapts) and
// fails 15% of requests with a
// 500; steady is clean. One prompt fits no lane and fails as bad_request without being sent.
const reportConfig = `
defaults:
  concurrency: 16
  timeout: 10s
  retry: {max_attempts: 3, base_delay: 500ms, max_delay: 4s, jitter: 0.2}
  breaker: {failure_threshold: 1000, open_for: 5s}
providers:
  - name: flaky
    type: sim
    models:
      - {name: f-small, category: small, context_window: 32000, rpm: 300, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 300ms, jitter: 0.3, seed: 5, faults: {server_error: 0.15}, limits: {f-small: {rpm: 60, hide_headers: true}}}
  - name: steady
    type: sim
    models:
      - {name: s-small, category: small, context_window: 32000, rpm: 120, input_per_mtok: 0.2, output_per_mtok: 0.8}
    sim: {latency: 500ms, jitter: 0.3, seed: 6}
`

// TestReportOfFaultyRun runs a batch with faults against the in-process simulator (virtual time),
// renders `llmbatch report -o report.html` and checks the page's figures against the result file
// and the simulator's own counters; then the terminal summary; then the page in headless Chromium.
func TestReportOfFaultyRun(t *testing.T) {
	var html []byte
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, reportConfig, 240, 40)
		huge := fmt.Sprintf("Label item %d as %s", 999, strings.Repeat("x ", 100000))
		s.prompts["p00999"] = huge
		line, _ := json.Marshal(map[string]any{"id": "p00999", "prompt": huge, "max_tokens": 50})
		f, err := os.OpenFile(s.input, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(append(line, '\n'))
		f.Close()

		code, _ := s.run("-v", "--prefer", "speed")
		if code != ExitPartial {
			t.Fatalf("exit %d, want 1 (the prompt no lane fits): %s", code, s.stderr.String())
		}
		lines := s.byID()
		page := filepath.Join(s.dir, "report.html")
		s.stderr.Reset()
		if code := Execute(context.Background(), s.factory(nil), []string{"report", s.output, "-c", s.cfgPath, "-o", page}); code != ExitOK {
			t.Fatalf("report: exit %d: %s", code, s.stderr.String())
		}
		html, err = os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		r, err := report.DataFromHTML(html)
		if err != nil {
			t.Fatal(err)
		}

		// Totals and the per-model table against the result lines.
		type agg struct {
			ok, failed, in, out, retries, rateLimited, serverErrors int
			cost                                                    float64
		}
		want := map[string]*agg{}
		var total agg
		failedBy := map[string]int{}
		for _, l := range lines {
			lane := l.Provider + "/" + l.Model
			if l.Provider == "" {
				lane = "(none)/"
			}
			if want[lane] == nil {
				want[lane] = &agg{}
			}
			a := want[lane]
			for _, x := range []*agg{a, &total} {
				if l.Status == results.StatusOK {
					x.ok++
					x.in += l.Usage.InputTokens
					x.out += l.Usage.OutputTokens
				} else {
					x.failed++
				}
				x.cost += l.CostUSD
				x.retries += max(l.Attempts-1, 0)
			}
			for _, at := range l.AttemptLog { // counted on the lane the attempt went to
				if want[at.Provider+"/"+at.Model] == nil {
					want[at.Provider+"/"+at.Model] = &agg{}
				}
				for _, x := range []*agg{want[at.Provider+"/"+at.Model], &total} {
					switch at.ErrorType {
					case "rate_limit":
						x.rateLimited++
					case "server_error":
						x.serverErrors++
					}
				}
			}
			if l.Error != nil {
				failedBy[l.Error.Type]++
			}
		}
		if r.Lines != len(lines) || r.OK != total.ok || r.Failed != total.failed || r.Retries != total.retries || math.Abs(r.CostUSD-total.cost) > 1e-9 {
			t.Errorf("report totals: %d lines %d ok %d failed %d retries $%v; file: %d lines %+v", r.Lines, r.OK, r.Failed, r.Retries, r.CostUSD, len(lines), total)
		}
		if failedBy["bad_request"] != 1 {
			t.Errorf("failures by class in the file: %v", failedBy)
		}
		for _, m := range r.Models {
			a := want[m.Lane()]
			if a == nil || m.OK != a.ok || m.Failed != a.failed || m.InputTokens != a.in || m.OutputTokens != a.out ||
				m.Retries != a.retries || m.RateLimited != a.rateLimited || math.Abs(m.CostUSD-a.cost) > 1e-9 {
				t.Errorf("row %s: %+v, file: %+v", m.Lane(), m, a)
			}
			if m.OK > 0 && !(m.P50 <= m.P90 && m.P90 <= m.P99 && m.P50 > 0) {
				t.Errorf("row %s: percentiles %d %d %d", m.Lane(), m.P50, m.P90, m.P99)
			}
		}

		// The simulator's counters: every 429 and every injected 500 it sent is in the events.
		simRateLimited, simFaults := 0, 0
		for _, st := range s.srv.Stats() {
			simRateLimited += st.RateLimited
			simFaults += st.Faults
		}
		events := map[string]report.Series{}
		for _, e := range r.Events {
			events[e.Name] = e
			sum := 0.0
			for _, v := range e.Values {
				sum += v
			}
			if sum != e.Total {
				t.Errorf("events %s: buckets add up to %v, total %v", e.Name, sum, e.Total)
			}
		}
		t.Logf("simulator: %d 429s, %d faults; report events: %v", simRateLimited, simFaults, eventTotals(r.Events))
		if simRateLimited == 0 || simFaults == 0 {
			t.Fatalf("the run had no faults to report (429s %d, 500s %d): the test config is off", simRateLimited, simFaults)
		}
		if got := int(events["429"].Total); got != simRateLimited || got != total.rateLimited {
			t.Errorf("429s in the report %d, simulator %d, attempt logs %d", got, simRateLimited, total.rateLimited)
		}
		if got := int(events["attempt failed: server_error"].Total); got != simFaults {
			t.Errorf("500s in the report %d, simulator %d", got, simFaults)
		}
		if got := int(events["retries"].Total); got != total.retries {
			t.Errorf("retries in the report %d, file %d", got, total.retries)
		}
		if got := int(events["failed: bad_request"].Total); got != 1 {
			t.Errorf("bad_request failures in the report %d, want 1", got)
		}

		// Throughput per lane adds up to its ok lines; the ceilings come from the config
		// (flaky: 300 RPM configured; steady: 120).
		perMinute := r.Step.Minutes()
		for _, s := range r.Throughput {
			sum := 0.0
			for _, v := range s.Values {
				sum += v * perMinute
			}
			if math.Abs(sum-float64(want[s.Name].ok)) > 1e-6 {
				t.Errorf("throughput %s adds up to %v ok, the file has %d", s.Name, sum, want[s.Name].ok)
			}
			if c := map[string]float64{"flaky/f-small": 300, "steady/s-small": 120}[s.Name]; s.Ceiling != c {
				t.Errorf("ceiling of %s: %v, want %v", s.Name, s.Ceiling, c)
			}
		}
		if len(r.Throughput) != 2 {
			t.Errorf("%d throughput series, want both lanes", len(r.Throughput))
		}
		// Cumulative cost ends at each model's cost.
		for _, c := range r.Cost {
			if last := c.Values[len(c.Values)-1]; math.Abs(last-want[c.Name].cost) > 1e-9 {
				t.Errorf("cumulative cost of %s ends at %v, the file says %v", c.Name, last, want[c.Name].cost)
			}
		}

		// The terminal summary shows the same figures.
		s.stdout.Reset()
		if code := Execute(context.Background(), s.factory(nil), []string{"report", s.output, "-c", s.cfgPath}); code != ExitOK {
			t.Fatalf("report: exit %d: %s", code, s.stderr.String())
		}
		text := s.stdout.String()
		for _, w := range []string{fmt.Sprintf("%d ok, %d failed", total.ok, total.failed), "cost " + money.Format(r.CostUSD),
			fmt.Sprintf("429 %d", simRateLimited), "failed: bad_request 1", "flaky/f-small", "timeline ("} {
			if !strings.Contains(text, w) {
				t.Errorf("terminal summary lacks %q:\n%s", w, text)
			}
		}
		t.Logf("terminal summary:\n%s", text)
	})
	if t.Failed() {
		return
	}
	// The bubble's temporary directory is gone: the browser opens a copy.
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, html, 0o644); err != nil {
		t.Fatal(err)
	}
	checkInBrowser(t, page, filepath.Join("..", "testdata", "out", "report.png"))
}

func eventTotals(ss []report.Series) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		out[s.Name] = s.Total
	}
	return out
}

// TestReportBadInput: a file that is not a result file is an error naming its line, exit 2.
func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "out.jsonl")
	os.WriteFile(bad, []byte(`{"custom_id":"a","status":"ok"}`+"\nnot json\n"), 0o644)
	empty := filepath.Join(dir, "empty.jsonl")
	os.WriteFile(empty, nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", bad}, bad + ":2: not a result line"},
		{[]string{"report", empty}, "no result lines"},
		{[]string{"report", filepath.Join(dir, "missing.jsonl")}, "no such file"},
	} {
		var stdout, stderr strings.Builder
		f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr},
			Getenv: func(string) string { return "" }, Now: time.Now}
		if code := Execute(context.Background(), f, tc.args); code != ExitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
