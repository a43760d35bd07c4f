package batch_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/analyze"
	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/adapters"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/selector"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// harness runs a batch against the in-process simulator. Everything it does is real: prompts are
// read from a file, requests go through the adapters' HTTP code to the simulator's handler, results
// are written as JSONL and parsed back.
type harness struct {
	t       *testing.T
	cfg     *config.Config
	srv     *sim.Server
	prompts map[string]string // id -> prompt text
	input   string
	opts    batch.Options
	out     bytes.Buffer
}

func newHarness(t *testing.T, yaml string, n int, promptLen int) *harness {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	h := &harness{t: t, cfg: cfg, prompts: map[string]string{}}
	h.srv = sim.New(cfg, sim.Options{Now: time.Now, Seed: 7})
	var in bytes.Buffer
	for i := range n {
		id := fmt.Sprintf("p%05d", i)
		text := fmt.Sprintf("Classify item %d as positive or negative: %s", i, strings.Repeat("lorem ipsum ", promptLen/12))
		h.prompts[id] = text
		line, _ := json.Marshal(map[string]any{"id": id, "prompt": text, "max_tokens": 50})
		in.Write(append(line, '\n'))
	}
	h.input = filepath.Join(t.TempDir(), "prompts.jsonl")
	if err := os.WriteFile(h.input, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// run executes the batch and returns the report and the virtual wall time.
func (h *harness) run(mod func(*batch.Options)) (*batch.Report, time.Duration) {
	t := h.t
	t.Helper()
	apis := map[string]provider.Provider{}
	for _, p := range h.cfg.Providers {
		api, err := adapters.New(p, adapters.NewHTTPClient(64, h.srv.Transport()), func(string) string { return "" }, adapters.WithNow(time.Now))
		if err != nil {
			t.Fatal(err)
		}
		apis[p.Name] = api
	}
	lanes, _ := selector.FromConfig(h.cfg, func(string) string { return "" })
	in, err := request.OpenInput(h.input, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	h.opts = batch.Options{Config: h.cfg, Providers: apis, Lanes: lanes, Source: analyze.Source(in, lanes),
		Output: results.NewWriter(&h.out, results.FormatDefault), Now: time.Now}
	if mod != nil {
		mod(&h.opts)
	}
	start := time.Now()
	rep, err := batch.Run(context.Background(), h.opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep, time.Since(start)
}

// results parses the output and checks that every prompt has exactly one line and that every ok
// line's answer belongs to its own prompt (the simulator's digest of the prompt text).
func (h *harness) results() map[string]results.Result {
	t := h.t
	t.Helper()
	got := map[string]results.Result{}
	sc := bufio.NewScanner(bytes.NewReader(h.out.Bytes()))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r results.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad result line %q: %v", sc.Text(), err)
		}
		if _, dup := got[r.CustomID]; dup {
			t.Fatalf("two result lines for %s", r.CustomID)
		}
		got[r.CustomID] = r
		text, ok := h.prompts[r.CustomID]
		if !ok {
			t.Fatalf("result for unknown id %s", r.CustomID)
		}
		if r.Status == results.StatusOK && !strings.HasPrefix(r.Content, sim.Digest([]string{text})) {
			t.Fatalf("%s: answer %.40q does not belong to its prompt (want digest %s)", r.CustomID, r.Content, sim.Digest([]string{text}))
		}
	}
	return got
}

func (h *harness) allOK(got map[string]results.Result) {
	h.t.Helper()
	if len(got) != len(h.prompts) {
		h.t.Fatalf("%d result lines for %d prompts", len(got), len(h.prompts))
	}
	for id, r := range got {
		if r.Status != results.StatusOK {
			h.t.Fatalf("%s: %s %+v", id, r.Status, r.Error)
		}
	}
}

// share is the achieved throughput as a fraction of a ceiling in requests per minute.
func share(n int, elapsed time.Duration, perMinute float64) float64 {
	return float64(n) / elapsed.Minutes() / perMinute
}

const rpmBound = `
defaults: {concurrency: 64, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, rpm: 300, tpm: 0, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 200ms, jitter: 0.2}
`

func TestRPMBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, rpmBound, 900, 40)
		rep, elapsed := h.run(nil)
		h.allOK(h.results())
		st := h.srv.Stats()["s1/m-small"]
		s := share(rep.OK, elapsed, 300)
		t.Logf("rpm-bound: %d ok in %s (virtual), %.1f%% of 300 RPM, %d 429s, max %d in a window", rep.OK, elapsed, 100*s, st.RateLimited, st.MaxInWindow)
		if st.MaxInWindow > 300 {
			t.Errorf("the simulator admitted %d in one window, limit 300", st.MaxInWindow)
		}
		if st.RateLimited > 3 {
			t.Errorf("%d requests were answered 429", st.RateLimited)
		}
		if s < 0.95 {
			t.Errorf("achieved %.1f%% of the RPM ceiling, want >= 95%%", 100*s)
		}
	})
}
