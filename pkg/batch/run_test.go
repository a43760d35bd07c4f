package batch_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/internal/testkit"
	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/progress"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/selector"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// rig runs batch.Run against `type: sim` providers (the in-process simulator behind the real
// adapters) with a real config file, a real input file and a real output file read back.
type rig struct {
	t       *testing.T
	dir     string
	cfg     *config.Config
	input   string
	output  string
	prompts map[string]string // id → prompt text
	logs    testkit.SyncBuffer
}

// newRig writes the config and n prompts.
func newRig(t *testing.T, yaml string, n int) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), prompts: map[string]string{}}
	path := filepath.Join(r.dir, "providers.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	r.cfg = cfg
	r.input = filepath.Join(r.dir, "in.jsonl")
	r.output = filepath.Join(r.dir, "in.results.jsonl")
	var in bytes.Buffer
	for i := range n {
		id := fmt.Sprintf("p%04d", i)
		text := fmt.Sprintf("Label item %d as positive or negative: %s", i, strings.Repeat("lorem ipsum ", 4))
		r.prompts[id] = text
		line, _ := json.Marshal(map[string]any{"id": id, "prompt": text, "max_tokens": 50})
		in.Write(append(line, '\n'))
	}
	if err := os.WriteFile(r.input, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) options() batch.Options {
	return batch.Options{Config: r.cfg, Input: r.input, Output: r.output, Getenv: func(string) string { return "" },
		Warn: &r.logs, Logger: slog.New(slog.NewTextHandler(&r.logs, nil)), Now: time.Now}
}

// simOptions is r.options with every provider served by srv, so the test can read srv's counters,
// and a summary to compare them with.
func (r *rig) simOptions(srv *sim.Server) batch.Options {
	o := r.options()
	o.Transport = func(*config.Provider) http.RoundTripper { return srv.Transport() }
	o.Summary = progress.NewSummary(time.Now)
	return o
}

// stopAfter sets o.Stop to close d from now, as a user's Ctrl-C would mid-run.
func stopAfter(o *batch.Options, d time.Duration) {
	stop := make(chan struct{})
	o.Stop = stop
	go func() {
		time.Sleep(d)
		close(stop)
	}()
}

// lines reads the output back, checking each answer belongs to its prompt.
func (r *rig) lines() []results.Result {
	r.t.Helper()
	data, err := os.ReadFile(r.output)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []results.Result
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var res results.Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			r.t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		if res.Status == results.StatusOK && !strings.HasPrefix(res.Content, sim.Digest([]string{r.prompts[res.CustomID]})) {
			r.t.Fatalf("%s: answer does not belong to its prompt", res.CustomID)
		}
		out = append(out, res)
	}
	return out
}

// byID checks there is at most one line per id and returns them.
func (r *rig) byID() map[string]results.Result {
	r.t.Helper()
	got := map[string]results.Result{}
	for _, res := range r.lines() {
		if _, dup := got[res.CustomID]; dup {
			r.t.Fatalf("two lines for %s", res.CustomID)
		}
		got[res.CustomID] = res
	}
	return got
}

const twoProviders = `
defaults: {concurrency: 8, timeout: 10s, retry: {max_attempts: 6, base_delay: 1s, max_delay: 8s, jitter: 0.25}, breaker: {failure_threshold: 50, open_for: 5s}}
providers:
  - name: cheap
    type: sim
    models:
      - {name: c-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 100ms, seed: 3, faults: {%s}}
  - name: dear
    type: sim
    models:
      - {name: d-small, category: small, input_per_mtok: 1, output_per_mtok: 4}
    sim: {api: anthropic, latency: 100ms}
`

// TestRunRetriesResumesAndStartsFresh: transient 500s are retried until every prompt has one ok
// line; a second run skips them all; --fresh moves the output aside and answers them again.
func TestRunRetriesResumesAndStartsFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(twoProviders, "server_error: 0.3"), 40)
		o := r.options()
		var shown int
		o.Progress = func(n, done int) *progress.Display {
			shown = n
			return progress.New(io.Discard, n, progress.Options{Now: time.Now, Done: done})
		}
		o.Summary = progress.NewSummary(time.Now)
		rep, err := batch.Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK != 40 || rep.Failed != 0 || rep.Remaining != 0 || shown != 40 {
			t.Fatalf("report %+v, display for %d prompts", rep, shown)
		}
		got := r.byID()
		retried := 0
		for id, res := range got {
			if res.Status != results.StatusOK {
				t.Fatalf("%s: %s %+v", id, res.Status, res.Error)
			}
			if res.Attempts > 1 {
				retried++
			}
		}
		if len(got) != 40 || retried == 0 {
			t.Fatalf("%d lines, %d retried: want 40 with some retried", len(got), retried)
		}
		if s := o.Summary.JSON(); s.OK != 40 || s.Retries == 0 {
			t.Errorf("summary: %d ok, %d retries", s.OK, s.Retries)
		}

		rep, err = batch.Run(context.Background(), r.options())
		if err != nil || rep.Skipped != 40 || rep.OK != 0 {
			t.Fatalf("resume: %+v, %v; want all 40 skipped", rep, err)
		}
		if n := len(r.lines()); n != 40 {
			t.Fatalf("resume wrote lines: %d", n)
		}

		o = r.options()
		o.Fresh = true
		rep, err = batch.Run(context.Background(), o)
		if err != nil || rep.OK != 40 || rep.Skipped != 0 {
			t.Fatalf("fresh: %+v, %v", rep, err)
		}
		moved, _ := filepath.Glob(r.output + ".*")
		if len(moved) != 1 {
			t.Errorf("--fresh left %v beside the output, want the old one moved aside", moved)
		}
	})
}

// TestRunAuthDisablesProviderAndFailsOver: a provider answering 401 is disabled and its prompts go
// to the other provider.
func TestRunAuthDisablesProviderAndFailsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(twoProviders, "auth: 1"), 20)
		rep, err := batch.Run(context.Background(), r.options())
		if err != nil || rep.OK != 20 {
			t.Fatalf("%+v, %v", rep, err)
		}
		for id, res := range r.byID() {
			if res.Provider != "dear" {
				t.Errorf("%s answered by %s", id, res.Provider)
			}
		}
		if !strings.Contains(r.logs.String(), "provider disabled") {
			t.Errorf("no warning about the disabled provider: %s", r.logs.String())
		}
	})
}

const oneProvider = `
defaults: {concurrency: 4, timeout: 10s, retry: {max_attempts: 3, base_delay: 1s, max_delay: 4s}, breaker: {failure_threshold: 5, open_for: 5s}}
providers:
  - name: only
    type: sim
    models:
      - {name: o-small, category: small, input_per_mtok: 100, output_per_mtok: 400%s}
    sim: {latency: 200ms, seed: 1%s}
`

// TestRunFailsWhatCannotSucceed: a provider failing every request gives each prompt an error line
// once its attempts are used up.
func TestRunFailsWhatCannotSucceed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(oneProvider, "", ", faults: {server_error: 1}, max_concurrency: 0"), 6)
		o := r.options()
		o.Verbose = true
		rep, err := batch.Run(context.Background(), o)
		if err != nil || rep.Failed != 6 {
			t.Fatalf("%+v, %v", rep, err)
		}
		// A prompt may fail without an attempt of its own: once the lane is dead (its breaker opened
		// again and again with no success), waiting prompts get the lane's last failure.
		sent := 0
		for id, res := range r.byID() {
			if res.Status != results.StatusError || res.Error.Type != "server_error" || len(res.AttemptLog) != res.Attempts {
				t.Errorf("%s: %+v", id, res)
			}
			sent += res.Attempts
		}
		if sent == 0 {
			t.Error("no prompt was sent: the failures were not the provider's")
		}
	})
}

// TestRunRateLimitedLaneCatchesUp: a lane whose real limit is lower than configured and hidden
// answers 429s; every prompt is still answered.
func TestRunRateLimitedLaneCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(oneProvider, ", rpm: 600", ", limits: {o-small: {rpm: 20, hide_headers: true}}"), 30)
		o := r.options()
		o.Summary = progress.NewSummary(time.Now)
		rep, err := batch.Run(context.Background(), o)
		if err != nil || rep.OK != 30 {
			t.Fatalf("%+v, %v", rep, err)
		}
		if n := o.Summary.JSON().RateLimited; n == 0 {
			t.Error("no 429 seen: the test proves nothing")
		}
		if got := len(r.byID()); got != 30 {
			t.Fatalf("%d lines", got)
		}
	})
}

// TestRunSummaryCountsEvery429: the summary's 429 column is every 429 the provider sent, in a run
// stopped while prompts still wait on the lane and in the resumed run that finishes them.
func TestRunSummaryCountsEvery429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(oneProvider, ", rpm: 600", ", limits: {o-small: {rpm: 20, hide_headers: true}}"), 40)
		srv := sim.New(r.cfg, sim.Options{Now: time.Now, Seed: 1})
		sent := 0
		for run := range 2 {
			o := r.simOptions(srv)
			if run == 0 {
				stopAfter(&o, 30*time.Second)
			}
			rep, err := batch.Run(context.Background(), o)
			if err != nil {
				t.Fatalf("run %d: %+v, %v", run, rep, err)
			}
			got := srv.Stats()["only/o-small"].RateLimited - sent
			sent += got
			t.Logf("run %d: %d ok, %d remaining, %d 429s from the simulator, %d in the summary", run, rep.OK, rep.Remaining, got,
				o.Summary.JSON().RateLimited)
			if run == 0 && (rep.Remaining == 0 || got == 0) {
				t.Fatalf("run 0 was not stopped with 429s behind it: %+v, %d 429s", rep, got)
			}
			if n := o.Summary.JSON().RateLimited; n != got {
				t.Errorf("run %d: the summary counts %d 429s, the simulator sent %d", run, n, got)
			}
		}
		if len(r.byID()) != 40 {
			t.Fatalf("%d lines after the resumed run", len(r.byID()))
		}
	})
}

// TestRunBudgetStops: the cap stops dispatch before it can be exceeded; what is left is remaining.
func TestRunBudgetStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(oneProvider, "", ""), 50)
		o := r.options()
		o.MaxCost = 0.25
		rep, err := batch.Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Budget || rep.Remaining == 0 || rep.CostUSD > o.MaxCost || rep.OK == 0 {
			t.Fatalf("report %+v: want some ok, stopped by the budget, cost within $%g", rep, o.MaxCost)
		}
		if got := len(r.lines()); got != rep.OK {
			t.Errorf("%d lines for %d ok", got, rep.OK)
		}
	})
}

// TestRunStopIsGraceful: after Stop no request starts, those in flight are written, the rest remain.
func TestRunStopIsGraceful(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(oneProvider, "", ""), 40)
		o := r.options()
		stopAfter(&o, 500*time.Millisecond)
		rep, err := batch.Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Interrupted || rep.OK == 0 || rep.Remaining == 0 || rep.OK+rep.Remaining != 40 {
			t.Fatalf("report %+v", rep)
		}
		if got := len(r.byID()); got != rep.OK {
			t.Errorf("%d lines for %d ok", got, rep.OK)
		}
	})
}

// TestRunCancelIsImmediate: cancelling ctx abandons requests in flight.
func TestRunCancelIsImmediate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(oneProvider, "", ""), 40)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(300 * time.Millisecond)
			cancel()
		}()
		rep, err := batch.Run(ctx, r.options())
		if !errors.Is(err, context.Canceled) || rep == nil || !rep.Interrupted {
			t.Fatalf("%+v, %v", rep, err)
		}
	})
}

// TestRunRefusesBeforeSending: problems found before anything is sent are *UsageError naming the
// file and line (or the flag), and a stop during the checks is ErrInterrupted.
func TestRunRefusesBeforeSending(t *testing.T) {
	r := newRig(t, fmt.Sprintf(oneProvider, "", ""), 3)
	bad := filepath.Join(r.dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"id\":\"a\",\"prompt\":\"hi\"}\n{\"id\":\"a\",\"prompt\":\"again\"}\n{oops\n"), 0o644)
	pinned := filepath.Join(r.dir, "pinned.jsonl")
	os.WriteFile(pinned, []byte(`{"id":"a","prompt":"hi","model":"nope"}`+"\n"), 0o644)
	stopped := make(chan struct{})
	close(stopped)
	for _, tc := range []struct {
		name string
		edit func(*batch.Options)
		want []string
	}{
		{"bad lines", func(o *batch.Options) { o.Input = bad }, []string{"bad.jsonl:2", "bad.jsonl:3", "2 problem(s)"}},
		{"unknown model in a line", func(o *batch.Options) { o.Input = pinned }, []string{"pinned.jsonl:1", `model "nope" is not in the config`}},
		{"unknown --model", func(o *batch.Options) { o.Select = selector.Options{PinModel: "gpt-x"} }, []string{"--model gpt-x"}},
		{"unknown --provider", func(o *batch.Options) { o.Select = selector.Options{PinProvider: "acme"} }, []string{"--provider acme"}},
		{"missing input", func(o *batch.Options) { o.Input = filepath.Join(r.dir, "none.jsonl") }, []string{"none.jsonl"}},
		{"broken output", func(o *batch.Options) {
			os.WriteFile(filepath.Join(r.dir, "broken.jsonl"), []byte("not json\n{}\n"), 0o644)
			o.Output = filepath.Join(r.dir, "broken.jsonl")
		}, []string{"--fresh"}},
	} {
		o := r.options()
		tc.edit(&o)
		_, err := batch.Run(context.Background(), o)
		var ue *batch.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v, want a UsageError", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
	o := r.options()
	o.Stop = stopped
	if _, err := batch.Run(context.Background(), o); !errors.Is(err, batch.ErrInterrupted) {
		t.Errorf("stop before sending: %v, want ErrInterrupted", err)
	}
	if _, err := os.Stat(r.output); !os.IsNotExist(err) {
		t.Errorf("an output was created by runs that sent nothing: %v", err)
	}
}

// TestRunNoUsableProvider: a provider whose key variable is unset is skipped with a warning; with
// none left the run is refused.
func TestRunNoUsableProvider(t *testing.T) {
	r := newRig(t, `
providers:
  - name: openai
    type: openai
    base_url: https://api.openai.com/v1
    api_key_env: NO_SUCH_KEY_FOR_TEST
    models:
      - {name: gpt-4o-mini, category: small, input_per_mtok: 0.15, output_per_mtok: 0.6}
`, 2)
	_, err := batch.Run(context.Background(), r.options())
	var ue *batch.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("%v, want a UsageError", err)
	}
	if !strings.Contains(r.logs.String(), "provider openai skipped: NO_SUCH_KEY_FOR_TEST is not set") {
		t.Errorf("no warning: %q", r.logs.String())
	}
}

// failingFile accepts n writes, then fails like a full disk.
type failingFile struct {
	mu sync.Mutex
	n  int
}

func (f *failingFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return 0, errors.New("no space left on device")
	}
	f.n--
	return len(p), nil
}

func (f *failingFile) Close() error { return nil }

// TestRunStopsOnWriteError: a failed write stops the run at once with ErrWrite.
func TestRunStopsOnWriteError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(oneProvider, "", ""), 30)
		o := r.options()
		o.OpenOutput = func(string) (io.WriteCloser, error) { return &failingFile{n: 5}, nil }
		rep, err := batch.Run(context.Background(), o)
		if !errors.Is(err, batch.ErrWrite) || rep.OK != 5 {
			t.Fatalf("%+v, %v; want ErrWrite after 5 lines", rep, err)
		}
	})
}

// TestRunToStdout: Output "-" writes the lines to Stdout.
func TestRunToStdout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fmt.Sprintf(oneProvider, "", ""), 5)
		o := r.options()
		var out bytes.Buffer
		o.Output, o.Stdout = "-", &out
		rep, err := batch.Run(context.Background(), o)
		if err != nil || rep.OK != 5 || strings.Count(out.String(), "\n") != 5 {
			t.Fatalf("%+v, %v, %q", rep, err, out.String())
		}
	})
}

// TestPrepareAnalyzeInOrder: the analysis hands every request over in input order with its counts.
func TestPrepareAnalyzeInOrder(t *testing.T) {
	r := newRig(t, fmt.Sprintf(twoProviders, ""), 300)
	p, err := batch.Prepare(context.Background(), batch.PrepareOptions{Config: r.cfg, Input: r.input})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Prompts != 300 || len(p.Lanes) != 2 {
		t.Fatalf("%d prompts, %d lanes", p.Prompts, len(p.Lanes))
	}
	next := 0
	err = p.Analyze(context.Background(), 3, func(a *batch.Analyzed) error {
		if a.Item.Index != next || a.Req.ID != fmt.Sprintf("p%04d", next) || a.Item.OutputTokens <= 0 {
			return fmt.Errorf("item %d: %+v", next, a.Item)
		}
		next++
		return nil
	})
	if err != nil || next != 300 {
		t.Fatalf("%v after %d", err, next)
	}
}

// TestRunDeadProviderFailsItsPrompts (issue 17): the only provider answers 500 to everything. With
// the default breaker (5 failures, open 30 s) only one trial per open period reaches it, so before
// the dead-lane rule 50 prompts waited forever. Now every prompt gets an error line naming the
// provider and its last failure within the bound, in virtual time.
func TestRunDeadProviderFailsItsPrompts(t *testing.T) {
	for _, tc := range []struct {
		name, defaults string
		bound          time.Duration
		closedPort     bool // every request fails to connect instead
	}{
		{"breaker opens in a row", "", time.Duration(config.DeadOpens) * 30 * time.Second, false},
		{"dead_after", "defaults: {dead_after: 40s, breaker: {open_for: 5m}}", 40*time.Second + 5*time.Second, false},
		{"closed port", "", time.Duration(config.DeadOpens) * 30 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, tc.defaults+`
providers:
  - name: down
    type: sim
    models:
      - {name: d-small, category: small, input_per_mtok: 1, output_per_mtok: 4}
    sim: {latency: 100ms, faults: {server_error: 1}}
`, 50)
				o := r.options()
				want := "500"
				if tc.closedPort {
					want = "connection refused"
					o.Transport = func(*config.Provider) http.RoundTripper { return refused{} }
				}
				start := time.Now()
				rep, err := batch.Run(context.Background(), o)
				elapsed := time.Since(start)
				if err != nil || rep.Failed != 50 || rep.Remaining != 0 {
					t.Fatalf("%+v, %v", rep, err)
				}
				t.Logf("50 prompts failed after %s (virtual)", elapsed)
				if elapsed > tc.bound {
					t.Errorf("the prompts failed after %s, want within %s", elapsed, tc.bound)
				}
				for id, res := range r.byID() {
					if res.Status != results.StatusError || res.Provider != "down" ||
						!strings.Contains(res.Error.Message, "provider down unusable") || !strings.Contains(res.Error.Message, want) {
						t.Fatalf("%s: %+v %+v", id, res, res.Error)
					}
				}
				if !strings.Contains(r.logs.String(), "lane dead") {
					t.Errorf("no warning: %s", r.logs.String())
				}
			})
		})
	}
}

// refused is a transport whose every connection is refused (a closed port).
type refused struct{}

func (refused) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

// TestRunViaBatch: with Via batch, a batch-enabled lane's prompts go as provider batch jobs
// (failed and expired lines sent again in new jobs) and come back marked via batch, at the batch
// price, each with its job's id; a second run finds them answered and sends nothing.
func TestRunViaBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, `
defaults: {concurrency: 16, timeout: 60s}
providers:
  - name: sb
    type: sim
    batch: {enabled: true, poll: 30s, turnaround: 24h}
    models:
      - {name: m, category: small, input_per_mtok: 0.15, output_per_mtok: 0.6, max_output_tokens: 4096}
    sim: {api: anthropic, batch: {turnaround: 20m, errored: 0.1, expired: 0.05}}
`, 120)
		o := r.options()
		o.Via = batch.ViaBatch
		rep, err := batch.Run(context.Background(), o)
		if err != nil || rep.OK != 120 {
			t.Fatalf("%+v, %v", rep, err)
		}
		jobs := map[string]bool{}
		for id, res := range r.byID() {
			if res.Status != results.StatusOK || res.Via != "batch" || res.BatchID == "" {
				t.Fatalf("%s: %+v", id, res)
			}
			jobs[res.BatchID] = true
		}
		if len(jobs) < 2 {
			t.Errorf("answers from %d jobs: failed lines should have gone out again in a new job", len(jobs))
		}
		rep, err = batch.Run(context.Background(), o)
		if err != nil || rep.Skipped != 120 || rep.OK != 0 {
			t.Fatalf("rerun: %+v, %v", rep, err)
		}
	})
}
