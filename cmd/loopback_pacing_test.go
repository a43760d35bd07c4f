package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/sim"
)

// TestLoopbackPacing is `make bench-loopback`: issue 11's shares over real HTTP, in real time, against
// `llmbatch sim serve --config testdata/loopback.sim.yaml` listening at $LLMBATCH_LOOPBACK_ADDR
// (skipped when unset). For each way of enforcing the limits — a 60 s window, a 10 s window, 1 s
// quanta — a run with no limits in its config learns them from the server's headers; the test prints
// the least time the limits allow, the time taken and the share of requests answered 429, and fails
// like the in-process proofs (5% plus one latency; under 3% 429s while learning). About 100 s.
func TestLoopbackPacing(t *testing.T) {
	addr := os.Getenv("LLMBATCH_LOOPBACK_ADDR")
	if addr == "" {
		t.Skip("LLMBATCH_LOOPBACK_ADDR is not set: run `make bench-loopback`")
	}
	root := "http://" + addr
	for _, tc := range []struct {
		provider string
		e        enforcement
		rpm, n   int
	}{
		{"win10", enforcement{name: "10s-window", window: 10 * time.Second}, 3600, 1500},
		{"quanta", enforcement{name: "1s-quanta", quantum: time.Second}, 600, 150},
		{"win60", enforcement{name: "60s-window", window: time.Minute}, 1200, 1300},
	} {
		t.Run(tc.e.name, func(t *testing.T) {
			yaml := fmt.Sprintf(`
defaults: {concurrency: 1000, timeout: 30s}
providers:
  - name: %s
    type: openai
    base_url: %s
    models:
      - {name: m-%s, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}
`, tc.provider, sim.BaseURL(root+"/sim/"+tc.provider, "openai"), tc.provider)
			s := newSimRun(t, yaml, tc.n, 40)
			before := loopbackStats(t, root)[tc.provider+"/m-"+tc.provider]
			f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &s.stdout, ErrOut: &s.stderr},
				Getenv: func(string) string { return "" }, Now: time.Now}
			start := time.Now()
			code := Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet"})
			elapsed := time.Since(start)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, s.stderr.String())
			}
			s.allOK()
			after := loopbackStats(t, root)[tc.provider+"/m-"+tc.provider]
			requests, rejected := after.Requests-before.Requests, after.RateLimited-before.RateLimited
			least := leastTime(tc.n, 150*time.Millisecond, pacedLane{tc.e.share(tc.rpm, 0, 1), tc.e.period()})
			limit := time.Duration(1.05*float64(least)) + 180*time.Millisecond
			t.Logf("%s over loopback HTTP: %d prompts, least time %s, took %s (%.1f%% over); %d of %d requests answered 429 (%.2f%%)",
				tc.e.name, tc.n, least.Round(time.Millisecond), elapsed.Round(time.Millisecond),
				100*(float64(elapsed)/float64(least)-1), rejected, requests, 100*float64(rejected)/float64(requests))
			if elapsed > limit {
				t.Errorf("took %s, want at most %s", elapsed, limit)
			}
			if float64(rejected) >= 0.03*float64(requests) {
				t.Errorf("%d of %d requests answered 429, want under 3%%", rejected, requests)
			}
		})
	}
}

// loopbackStats reads the simulator's counters over HTTP.
func loopbackStats(t *testing.T, root string) map[string]sim.ModelStats {
	t.Helper()
	resp, err := http.Get(root + sim.StatsPath)
	if err != nil {
		t.Fatalf("is `llmbatch sim serve` running? %v", err)
	}
	defer resp.Body.Close()
	var st map[string]sim.ModelStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
