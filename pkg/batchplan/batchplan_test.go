package batchplan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/config"
)

func provider(enabled bool, discount *float64, turnaround time.Duration) *config.Provider {
	return &config.Provider{Name: "p", Batch: &config.Batch{Enabled: enabled, Discount: discount,
		Turnaround: config.Duration(turnaround), MaxRequests: 100, EnqueuedTokens: map[string]int64{"m": 1000}}}
}

func TestDecide(t *testing.T) {
	zero, tenth := 0.0, 0.1
	learned := Turnaround{Expected: 30 * time.Minute, Learned: 5}
	configured := Turnaround{Expected: 24 * time.Hour}
	for _, c := range []struct {
		name     string
		via      string
		p        *config.Provider
		deadline time.Duration
		t        Turnaround
		route    Route
		discount float64
		reason   string
	}{
		{"realtime", ViaRealtime, provider(true, nil, 0), 0, configured, Realtime, 0, "--via realtime"},
		{"empty via is realtime", "", provider(true, nil, 0), 0, configured, Realtime, 0, "--via realtime"},
		{"batch", ViaBatch, provider(true, nil, 0), time.Minute, configured, Batch, 0.5, "--via batch"},
		{"batch, configured discount", ViaBatch, provider(true, &tenth, 0), 0, configured, Batch, 0.1, "--via batch"},
		{"batch not enabled", ViaBatch, provider(false, nil, 0), 0, configured, Realtime, 0, "not enabled"},
		{"no batch block", ViaAuto, &config.Provider{Name: "p"}, 0, configured, Realtime, 0, "not enabled"},
		{"nil provider", ViaAuto, nil, 0, configured, Realtime, 0, "not enabled"},
		{"auto without deadline", ViaAuto, provider(true, nil, 0), 0, configured, Batch, 0.5, "no --deadline"},
		{"auto, no discount", ViaAuto, provider(true, &zero, 0), 0, configured, Realtime, 0, "not cheaper"},
		{"auto, configured misses", ViaAuto, provider(true, nil, 0), time.Hour, configured, Realtime, 0,
			"expected turnaround 24h0m0s (config) misses --deadline 1h0m0s"},
		{"auto, learned fits", ViaAuto, provider(true, nil, 0), time.Hour, learned, Batch, 0.5,
			"expected turnaround 30m0s (learned from 5 jobs) fits --deadline 1h0m0s"},
		{"auto, exactly the deadline fits", ViaAuto, provider(true, nil, 0), 30 * time.Minute, learned, Batch, 0.5, "fits"},
		{"auto, learned misses", ViaAuto, provider(true, nil, 0), 29 * time.Minute, learned, Realtime, 0, "misses"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.via, c.p, c.deadline, c.t)
			if d.Route != c.route || d.Discount != c.discount || !strings.Contains(d.Reason, c.reason) {
				t.Errorf("got %+v, want route %s discount %v reason containing %q", d, c.route, c.discount, c.reason)
			}
			if want := 2.0 * (1 - c.discount); d.Price(2) != want {
				t.Errorf("price of 2: %v, want %v", d.Price(2), want)
			}
		})
	}
}

func TestCheckVia(t *testing.T) {
	for _, v := range []string{"", "realtime", "batch", "auto"} {
		if err := CheckVia(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	if err := CheckVia("Batch"); err == nil || !strings.Contains(err.Error(), `--via "Batch": want realtime, batch or auto`) {
		t.Errorf("Batch: %v", err)
	}
}

func TestWall(t *testing.T) {
	p := provider(true, nil, 0) // 100 requests per job, 1000 enqueued tokens for model m
	for _, c := range []struct {
		name      string
		model     string
		n, tokens int64
		want      time.Duration
	}{
		{"nothing", "m", 0, 0, 0},
		{"one job", "m", 10, 100, time.Hour},
		{"four jobs in one wave", "other", 400, 1e9, time.Hour},
		{"five jobs: two waves", "other", 401, 1e9, 2 * time.Hour},
		{"enqueued tokens: three waves", "m", 10, 2500, 3 * time.Hour},
		{"enqueued tokens exactly the limit", "m", 10, 1000, time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Wall(p, c.model, c.n, c.tokens, LaneJobs, time.Hour); got != c.want {
				t.Errorf("Wall = %v, want %v", got, c.want)
			}
		})
	}
}

func sample(provider string, i int, took time.Duration) Sample {
	return Sample{Provider: provider, Job: "j", Chunk: "c" + string(rune('a'+i)), Ended: time.Unix(int64(i)*60, 0), Took: took}
}

func TestExpectedLearnsFromEarlierJobs(t *testing.T) {
	mins := func(ms ...int) []time.Duration {
		out := make([]time.Duration, len(ms))
		for i, m := range ms {
			out[i] = time.Duration(m) * time.Minute
		}
		return out
	}
	for _, c := range []struct {
		name string
		took []time.Duration // in the order the jobs ended
		want time.Duration
		n    int
		ok   bool
	}{
		{"none", nil, 0, 0, false},
		{"two are too few", mins(10, 20), 0, 2, false},
		{"three: the 90th percentile is the largest", mins(10, 30, 20), 30 * time.Minute, 3, true},
		{"ten: the 9th smallest", mins(1, 2, 3, 4, 5, 6, 7, 8, 9, 100), 9 * time.Minute, 10, true},
		{"only the last 20 count", append(mins(500, 500, 500, 500, 500), mins(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)...),
			18 * time.Minute, 20, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := NewHistory()
			for i, d := range c.took {
				h.Add(sample("p", i, d))
			}
			h.Add(sample("other", 0, time.Hour)) // another provider's job does not count
			d, n, ok := h.Expected("p")
			if d != c.want || n != c.n || ok != c.ok {
				t.Errorf("Expected = %v, %d, %v; want %v, %d, %v", d, n, ok, c.want, c.n, c.ok)
			}
			tr := h.Turnaround(provider(true, nil, 24*time.Hour))
			if c.ok && (tr.Expected != c.want || tr.Learned != c.n) || !c.ok && (tr.Expected != 24*time.Hour || tr.Learned != 0) {
				t.Errorf("Turnaround = %+v", tr)
			}
		})
	}
}

func TestHistoryAddRefusesDuplicatesAndEmpty(t *testing.T) {
	h := NewHistory()
	if !h.Add(sample("p", 0, time.Minute)) || h.Add(sample("p", 0, time.Hour)) || h.Add(sample("p", 1, 0)) || h.Add(sample("", 2, time.Minute)) {
		t.Fatal("Add accepted a duplicate, a zero duration or no provider")
	}
}

// TestHistoryFileRoundTrip: samples appended by one run are read by the next; a torn line (a crash
// mid-append) is skipped; samples already in the file are not appended twice.
func TestHistoryFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := HistoryPath(func(k string) string { return map[string]string{"HOME": dir}[k] })
	if path != filepath.Join(dir, ".local", "state", "llmbatch", "batch-history.jsonl") {
		t.Fatalf("path %s", path)
	}
	h := NewHistory()
	ss := []Sample{sample("p", 0, time.Minute), sample("p", 1, 2*time.Minute), sample("p", 2, 3*time.Minute)}
	if err := h.AppendFile(path, ss); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"provider":"p","job":"j","chu`)
	_ = f.Close()
	h2, err := Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if d, n, ok := h2.Expected("p"); !ok || n != 3 || d != 3*time.Minute {
		t.Fatalf("read back %v %d %v", d, n, ok)
	}
	before, _ := os.ReadFile(path)
	if err := h2.AppendFile(path, ss); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); len(after) != len(before) {
		t.Errorf("known samples appended again")
	}
	if HistoryPath(func(string) string { return "" }) != "" {
		t.Error("a path without XDG_STATE_HOME and HOME")
	}
}

// TestSamplesFromJournal: only chunks whose job was watched from creation to end give a sample, of
// the time between the created and ended records.
func TestSamplesFromJournal(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "out.jsonl.batches")
	j, _, err := batchjournal.Open(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	for i, watched := range []bool{true, false} {
		c, err := j.Plan(batchjournal.Record{Provider: "p", Model: "m", IDs: []string{"a", "b"}[i : i+1]})
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		if err := j.Append(batchjournal.Record{Op: batchjournal.OpCreated, Chunk: c.ID, BatchID: "b"}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(17 * time.Minute)
		if err := j.Append(batchjournal.Record{Op: batchjournal.OpEnded, Chunk: c.ID, Status: "completed", Watched: watched}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	h := NewHistory()
	if err := h.AddJournal(path); err != nil {
		t.Fatal(err)
	}
	if err := h.AddJournal(path + ".missing"); err != nil {
		t.Fatalf("missing journal: %v", err)
	}
	ss := h.byProvider["p"]
	if len(ss) != 1 || ss[0].Took != 17*time.Minute || ss[0].Chunk != "c1" || ss[0].Job == "" {
		t.Errorf("samples %+v: want c1's 17m only", ss)
	}
}
