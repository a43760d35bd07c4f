package report

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

func ts(d time.Duration) string { return t0.Add(d).Format("2006-01-02T15:04:05.000Z07:00") }

// lines builds a small result file by hand: two lanes, a cache hit, a failure, retries with and
// without an attempt log.
func sampleFile() string {
	s := time.Second
	ls := []map[string]any{
		{"custom_id": "a", "status": "ok", "provider": "p", "model": "m1", "usage": map[string]int{"input_tokens": 10, "output_tokens": 5},
			"cost_usd": 0.1, "attempts": 1, "latency_ms": 100, "request_hash": "h", "started_at": ts(0), "finished_at": ts(s / 2)},
		{"custom_id": "b", "status": "ok", "provider": "p", "model": "m1", "usage": map[string]int{"input_tokens": 10, "output_tokens": 5},
			"cost_usd": 0.2, "attempts": 3, "latency_ms": 300, "request_hash": "h", "started_at": ts(s), "finished_at": ts(12 * s),
			"attempt_log": []map[string]any{{"at": ts(s), "provider": "p", "model": "m1", "error_type": "rate_limit"},
				{"at": ts(6 * s), "provider": "p", "model": "m1", "error_type": "server_error"},
				{"at": ts(11 * s), "provider": "p", "model": "m1"}}},
		{"custom_id": "c", "status": "error", "provider": "q", "model": "m2", "error": map[string]any{"type": "timeout", "message": "x"},
			"attempts": 2, "request_hash": "h", "started_at": ts(2 * s), "finished_at": ts(7 * s)},
		{"custom_id": "d", "status": "ok", "provider": "q", "model": "m2", "usage": map[string]int{"input_tokens": 20, "output_tokens": 10},
			"cost_usd": 0.000009450000000000001, "attempts": 1, "latency_ms": 200, "request_hash": "h", "started_at": ts(3 * s), "finished_at": ts(8 * s)},
		{"custom_id": "e", "status": "ok", "provider": "q", "model": "m2", "usage": map[string]int{"input_tokens": 20, "output_tokens": 10},
			"cached": true, "cached_cost_usd": 0.05, "via": "cache", "attempts": 0, "request_hash": "h", "started_at": ts(9 * s), "finished_at": ts(9 * s)},
		{"custom_id": "f", "status": "ok", "provider": "p", "model": "m1", "cost_usd": 0.3, "attempts": 1, "latency_ms": 50, "request_hash": "h"},
	}
	var b bytes.Buffer
	for _, l := range ls {
		j, _ := json.Marshal(l)
		b.Write(append(j, '\n'))
	}
	return b.String()
}

func TestCompute(t *testing.T) {
	rs, err := Read(strings.NewReader(sampleFile()), "out.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	r := Compute(rs, Options{Limits: map[string]Limit{"p/m1": {RPM: 60}, "q/m2": {RPM: 100, TPM: 900}}, MaxBuckets: 10})
	// Span 12 s with at most 10 buckets: 2 s buckets, 7 of them.
	if r.Step != 2*time.Second || r.Buckets != 7 || !r.Start.Equal(t0) || !r.End.Equal(t0.Add(12*time.Second)) {
		t.Fatalf("step %s, %d buckets, %s..%s", r.Step, r.Buckets, r.Start, r.End)
	}
	if r.Lines != 6 || r.OK != 4 || r.Failed != 1 || r.Cached != 1 || r.Untimed != 1 || r.Retries != 3 || r.Attempts != 8 || r.Logged != 1 {
		t.Fatalf("totals %+v", r)
	}
	if r.CostUSD != 0.60000945 || r.SavedUSD != 0.05 {
		t.Fatalf("cost %v saved %v", r.CostUSD, r.SavedUSD)
	}
	if len(r.Models) != 2 {
		t.Fatalf("models %+v", r.Models)
	}
	p, q := r.Models[0], r.Models[1]
	if p.Lane() != "p/m1" || p.OK != 3 || p.RateLimited != 1 || p.Retries != 2 || p.P50 != 100 || p.P99 != 300 || p.InputTokens != 20 {
		t.Errorf("p/m1 row %+v", p)
	}
	// p/m1: 2 timed ok lines between 0 s and 12 s = 10/min; ceiling = RPM 60.
	if p.PerMinute != 10 || p.Ceiling != 60 {
		t.Errorf("p/m1 rate %v ceiling %v", p.PerMinute, p.Ceiling)
	}
	// q/m2: 60 tokens over 2 lines with usage (1 ok, 1 cached) = 30 a request; 900 TPM / 30 = 30 < RPM 100.
	if q.OK != 1 || q.Failed != 1 || q.Cached != 1 || q.Ceiling != 30 || q.CostUSD != 0.00000945 || q.SavedUSD != 0.05 {
		t.Errorf("q/m2 row %+v", q)
	}
	// Throughput: p/m1 has one ok in bucket 0 and one in bucket 6 (12 s, the last); 1 per 2 s = 30/min.
	want := map[string][]float64{"p/m1": {30, 0, 0, 0, 0, 0, 30}, "q/m2": {0, 0, 0, 0, 30, 0, 0}, "cache": {0, 0, 0, 0, 30, 0, 0}}
	if len(r.Throughput) != 3 {
		t.Fatalf("throughput series %+v", r.Throughput)
	}
	for _, s := range r.Throughput {
		if !equal(s.Values, want[s.Name]) {
			t.Errorf("throughput %s = %v, want %v", s.Name, s.Values, want[s.Name])
		}
	}
	if r.Throughput[0].Ceiling != 60 || r.Throughput[1].Ceiling != 30 {
		t.Errorf("ceilings %v %v", r.Throughput[0].Ceiling, r.Throughput[1].Ceiling)
	}
	// Cumulative cost of p/m1: 0.1 in bucket 0, +0.2 in bucket 6 (the untimed line is in the table only).
	if got := r.Cost[0].Values; r.Cost[0].Name != "p/m1" || got[0] != 0.1 || got[5] != 0.1 || math.Abs(got[6]-0.3) > 1e-12 {
		t.Errorf("cost %s %v", r.Cost[0].Name, got)
	}
	// Latency: bucket 0 has 100 ms, bucket 4 has 200, bucket 6 has 300, the rest none.
	p50 := r.Latency[0].Values
	if p50[0] != 100 || p50[4] != 200 || p50[6] != 300 || !math.IsNaN(p50[1]) {
		t.Errorf("p50 %v", p50)
	}
	ev := map[string][]float64{}
	for _, s := range r.Events {
		ev[s.Name] = s.Values
	}
	// b's log: a 429 at 1 s and a server error at 6 s, each followed by a retry; c's second attempt
	// has no log, so its retry sits at its finish (7 s, bucket 3); c failed with timeout.
	wantEv := map[string][]float64{
		"429":                          {1, 0, 0, 0, 0, 0, 0},
		"attempt failed: server_error": {0, 0, 0, 1, 0, 0, 0},
		"retries":                      {1, 0, 0, 2, 0, 0, 0},
		"failed: timeout":              {0, 0, 0, 1, 0, 0, 0},
	}
	if len(ev) != len(wantEv) {
		t.Errorf("events %v", ev)
	}
	for k, v := range wantEv {
		if !equal(ev[k], v) {
			t.Errorf("events %q = %v, want %v", k, ev[k], v)
		}
	}
	if r.Events[0].Name != "429" || r.Events[1].Name != "retries" {
		t.Errorf("event order %s, %s", r.Events[0].Name, r.Events[1].Name)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadErrorsNameLineAndField(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"custom_id":"a","status":"ok"}` + "\n" + `{"custom_id":`, "out.jsonl:2: not a result line"},
		{`{"custom_id":"a","status":"done"}`, `out.jsonl:1: field status: "done"`},
		{`{"custom_id":"a","status":"ok","finished_at":"yesterday"}`, `out.jsonl:1: field finished_at: "yesterday" is not an RFC 3339 time`},
		{`{"id":"batch_req_1","custom_id":"","response":{"status_code":200}}`, "out.jsonl:1: an OpenAI Batch format line"},
	} {
		_, err := Read(strings.NewReader(tc.in), "out.jsonl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestTextAndHTML(t *testing.T) {
	rs, err := Read(strings.NewReader(sampleFile()), "out.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	r := Compute(rs, Options{})
	var text bytes.Buffer
	if err := r.Text(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"6 result lines: 4 ok, 1 failed, 1 from the cache", "cost $0.60; the cache hits saved $0.05",
		"1 lines have no started_at/finished_at", "events: 429 1, retries 3, attempt failed: server_error 1, failed: timeout 1",
		"$0.00000945"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "000000000001") {
		t.Errorf("float noise in the text:\n%s", text.String())
	}
	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, id := range ChartIDs {
		if !strings.Contains(html, `id="`+id+`"`) {
			t.Errorf("no chart element %s", id)
		}
	}
	if regexp.MustCompile(`<(script|link)[^>]+(src|href)=`).MatchString(html) || strings.Contains(html, "go-echarts-assets") {
		t.Error("the page loads something from elsewhere")
	}
	if !strings.Contains(html, "Licensed to the Apache Software Foundation") {
		t.Error("ECharts is not inlined")
	}
	back, err := DataFromHTML(page.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if back.OK != 4 || back.CostUSD != 0.60000945 || len(back.Models) != 2 || back.Models[0].P99 != 300 {
		t.Errorf("figures read back from the page: %+v", back)
	}
}
