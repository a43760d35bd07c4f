package cmd

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llmbatch/llmbatch/internal/testkit"
	"github.com/llmbatch/llmbatch/pkg/config"
)

// holdingTransport holds every request of one prompt until release is closed.
type holdingTransport struct {
	next    http.RoundTripper
	marker  []byte
	release <-chan struct{}
}

func (h holdingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if bytes.Contains(body, h.marker) {
		select {
		case <-h.release:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return h.next.RoundTrip(req)
}

const metricsConfig = `
defaults:
  concurrency: 8
  timeout: 10s
  retry: {max_attempts: 6, base_delay: 20ms, max_delay: 100ms, jitter: 0.1}
  breaker: {failure_threshold: 1000, open_for: 1s}
providers:
  - name: s1
    type: sim
    models: [{name: m-small, category: small, rpm: 6000, input_per_mtok: 0.1, output_per_mtok: 0.4}]
    sim: {latency: 20ms, jitter: 0.5, seed: 3, faults: {server_error: 0.1}}
  - name: s2
    type: sim
    models: [{name: m-other, category: small, rpm: 6000, input_per_mtok: 0.2, output_per_mtok: 0.8}]
    sim: {latency: 30ms, jitter: 0.5, seed: 4}
`

// TestRunMetricsScrape runs `llmbatch run --metrics-addr 127.0.0.1:0` for real (loopback HTTP, so
// outside synctest) with one prompt held in flight at the end: once the output holds every other
// line, /metrics is scraped, parsed with the Prometheus text parser, and its counts must equal the
// result file's — ok requests, failed attempts by class (from the attempt log), tokens and cost per
// lane — with exactly one request in flight.
func TestRunMetricsScrape(t *testing.T) {
	const n = 60
	s := newSimRun(t, metricsConfig, n, 40)
	release := make(chan struct{})
	var released sync.Once
	defer released.Do(func() { close(release) })
	stderr := &testkit.SyncBuffer{}
	f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: stderr},
		Getenv: func(string) string { return "" }, Now: time.Now,
		Transport: func(*config.Provider) http.RoundTripper {
			return holdingTransport{next: s.srv.Transport(), marker: []byte("Label item 59 as"), release: release}
		}}
	code := make(chan int, 1)
	go func() {
		code <- Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "-v",
			"--progress", "never", "--prefer", "speed", "--metrics-addr", "127.0.0.1:0"})
	}()

	addr := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/metrics)`)
	var url string
	deadline := time.Now().Add(60 * time.Second)
	for url == "" {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no metrics address logged:\n%s", stderr.String())
		}
		select {
		case c := <-code:
			t.Fatalf("run ended (exit %d) before serving metrics:\n%s", c, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Wait until every prompt but the held one has its line.
	for {
		data, _ := os.ReadFile(s.output)
		if bytes.Count(data, []byte("\n")) == n-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the output never reached %d lines:\n%s", n-1, stderr.String())
		}
		<-time.After(10 * time.Millisecond)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("the Prometheus text parser rejects /metrics: %v", err)
	}
	released.Do(func() { close(release) })
	if c := <-code; c != ExitOK {
		t.Fatalf("exit %d:\n%s", c, stderr.String())
	}

	// What the file says, per lane, without the held prompt.
	type lane struct{ ok, in, out int }
	file := map[string]*lane{}
	failedByClass := map[string]int{} // "provider/model/class"
	cost := map[string]float64{}
	for _, r := range s.lines() {
		if r.CustomID == "p00059" {
			continue
		}
		k := r.Provider + "/" + r.Model
		if file[k] == nil {
			file[k] = &lane{}
		}
		file[k].ok++
		file[k].in += r.Usage.InputTokens
		file[k].out += r.Usage.OutputTokens
		cost[k] += r.CostUSD
		for _, a := range r.AttemptLog {
			if a.ErrorType != "" {
				failedByClass[a.Provider+"/"+a.Model+"/"+a.ErrorType]++
			}
		}
	}
	got := map[string]float64{}
	sum := func(name string, key func(labels map[string]string) string) {
		fam, ok := fams[name]
		if !ok {
			t.Errorf("/metrics has no %s", name)
			return
		}
		for _, m := range fam.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			got[name+" "+key(labels)] += value(m)
		}
	}
	laneKey := func(l map[string]string) string { return l["provider"] + "/" + l["model"] }
	sum("llmbatch_requests_total", func(l map[string]string) string { return laneKey(l) + "/" + l["status"] + "/" + l["class"] })
	sum("llmbatch_tokens_total", func(l map[string]string) string { return laneKey(l) + "/" + l["direction"] })
	sum("llmbatch_cost_usd_total", laneKey)
	sum("llmbatch_requests_in_flight", func(map[string]string) string { return "all" })
	for _, name := range []string{"llmbatch_request_duration_seconds", "llmbatch_limiter_wait_seconds", "llmbatch_breaker_state",
		"llmbatch_limit_requests_per_minute", "llmbatch_limit_tokens_per_minute", "llmbatch_rate_limited_total"} {
		if _, ok := fams[name]; !ok && name != "llmbatch_rate_limited_total" {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if len(file) != 2 {
		t.Errorf("the batch used %d lanes, want both", len(file))
	}
	for k, l := range file {
		if g := got["llmbatch_requests_total "+k+"/ok/none"]; int(g) != l.ok {
			t.Errorf("%s: %v ok requests in /metrics, %d ok lines in the file", k, g, l.ok)
		}
		if g := got["llmbatch_tokens_total "+k+"/input"]; int(g) != l.in {
			t.Errorf("%s: %v input tokens in /metrics, %d in the file", k, g, l.in)
		}
		if g := got["llmbatch_tokens_total "+k+"/output"]; int(g) != l.out {
			t.Errorf("%s: %v output tokens in /metrics, %d in the file", k, g, l.out)
		}
		if g := got["llmbatch_cost_usd_total "+k]; math.Abs(g-cost[k]) > 1e-9 {
			t.Errorf("%s: $%v in /metrics, $%v in the file", k, g, cost[k])
		}
	}
	errs := 0
	for k, g := range got { // every failed attempt in /metrics is in the logs...
		if rest, ok := strings.CutPrefix(k, "llmbatch_requests_total "); ok && strings.Contains(rest, "/error/") {
			errs += int(g)
			if kk := strings.Replace(rest, "/error/", "/", 1); int(g) != failedByClass[kk] {
				t.Errorf("%s: %v failed attempts in /metrics, %d in the attempt logs", kk, g, failedByClass[kk])
			}
		}
	}
	for k, c := range failedByClass { // ...and every one in the logs is in /metrics
		i := strings.LastIndexByte(k, '/')
		if g := got["llmbatch_requests_total "+k[:i]+"/error"+k[i:]]; int(g) != c {
			t.Errorf("%s: %d failed attempts in the attempt logs, %v in /metrics", k, c, g)
		}
	}
	if errs == 0 {
		t.Error("no failed attempts: the 10% server errors did not happen, the test proves less than it says")
	}
	if g := got["llmbatch_requests_in_flight all"]; g != 1 {
		t.Errorf("%v requests in flight, want the held one", g)
	}
	oks := map[string]int{}
	for k, l := range file {
		oks[k] = l.ok
	}
	t.Logf("scraped %s: %d metric families; ok lines by lane %v; failed attempts by class %v", url, len(fams), oks, failedByClass)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}
