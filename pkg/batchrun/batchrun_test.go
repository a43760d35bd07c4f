package batchrun_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/batchrun"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/sim"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

var dialects = []struct{ api, model string }{{"openai", "gpt-sim"}, {"anthropic", "claude-sim"}, {"gemini", "gemini-sim"}}

type lane struct {
	cfg    *config.Config
	srv    *sim.Server
	client batchapi.Client
	model  *config.Model
	byID   map[string]batchrun.Prompt
	order  []string
}

func newLane(t *testing.T, api, model, simBatch string, n int) *lane {
	t.Helper()
	cfg, srv, cl := simBatchAPI(t, fmt.Sprintf(`providers:
  - name: p
    type: sim
    batch: true
    models: [{name: %s, input_per_mtok: 0.15, output_per_mtok: 0.6, max_output_tokens: 4096}]
    sim: {api: %s, batch: %s}
`, model, api, simBatch))
	l := &lane{cfg: cfg, srv: srv, client: cl, model: cfg.Providers[0].Models[0], byID: map[string]batchrun.Prompt{}}
	for i := range n {
		id := fmt.Sprintf("p%04d", i)
		l.byID[id] = userPrompt(id, model, fmt.Sprintf("prompt number %d of the lane", i), 150)
		l.order = append(l.order, id)
	}
	return l
}

// simBatchAPI parses providersYAML and serves its first provider from the in-process simulator,
// returning the batch client that reaches it over HTTP.
func simBatchAPI(tb testing.TB, providersYAML string) (*config.Config, *sim.Server, batchapi.Client) {
	tb.Helper()
	cfg, err := config.Parse("t.yaml", []byte(providersYAML))
	if err != nil {
		tb.Fatal(err)
	}
	srv := sim.New(cfg, sim.Options{})
	cl, err := batchapi.New(cfg.Providers[0], batchapi.Options{Client: &http.Client{Transport: srv.Transport()}})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg, srv, cl
}

// userPrompt is a one-message prompt to model, its tokens estimated as the simulator counts the
// text plus maxTokens of answer.
func userPrompt(id, model, text string, maxTokens int) batchrun.Prompt {
	req := &provider.Request{Model: model, MaxTokens: maxTokens, Messages: []request.Message{{Role: "user", Content: request.Content{Text: text}}}}
	return batchrun.Prompt{ID: id, Request: req, Tokens: int64(sim.PromptTokens([]string{text}) + maxTokens)}
}

// output is what the result file would hold: one ok line per id (the resume rules drop repeats).
type output struct {
	ok        map[string]batchapi.Result
	delivered int
}

func (l *lane) run(ctx context.Context, t *testing.T, j *batchjournal.Journal, cl batchapi.Client, out *output, opts func(*batchrun.Options)) error {
	o := batchrun.Options{Journal: j, Client: cl, Provider: "p", Model: l.model.Name,
		Caps: batchapi.Caps{MaxRequests: 500, MaxBytes: 200 << 20}, Poll: batchapi.PollPolicy{First: time.Minute}, Jobs: 2, MaxRounds: 6,
		Lookup: func(id string) (batchrun.Prompt, error) {
			p, ok := l.byID[id]
			if !ok {
				return p, fmt.Errorf("no prompt %s", id)
			}
			return p, nil
		},
		OnResult: func(id string, r batchapi.Result, _ *batchapi.Job) error {
			out.delivered++
			if r.Outcome == batchapi.LineOK {
				out.ok[id] = r
			}
			return nil
		}}
	if opts != nil {
		opts(&o)
	}
	// The output's resume scan: ids answered before this run are left out.
	answered := map[string]bool{}
	for id := range out.ok {
		answered[id] = true
	}
	return batchrun.Run(ctx, o, func(yield func(batchrun.Prompt) error) error {
		for _, id := range l.order {
			if answered[id] {
				continue // answered in the output already: a resumed run leaves it out
			}
			if err := yield(l.byID[id]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (l *lane) check(t *testing.T, out *output, wantLines int) {
	t.Helper()
	if len(out.ok) != len(l.order) {
		t.Fatalf("%d of %d prompts answered", len(out.ok), len(l.order))
	}
	var realtime, batch float64
	for _, id := range l.order {
		p, r := l.byID[id], out.ok[id]
		texts := []string{p.Request.Messages[0].Content.Text}
		want, outTok, _ := sim.Reply(texts, p.Request.MaxTokens)
		if r.Response.Content != want {
			t.Fatalf("%s: %q, want %q", id, r.Response.Content, want)
		}
		realtime += tokens.Cost(l.model, sim.PromptTokens(texts), outTok)
		batch += batchapi.Cost(l.model, r.Response.Usage.InputTokens, r.Response.Usage.OutputTokens, 0.5)
	}
	if math.Abs(batch-realtime/2) > 1e-9 {
		t.Errorf("batch cost %.10f, realtime %.10f", batch, realtime)
	}
	st := l.srv.Stats()["p/"+l.model.Name]
	if st.BatchOK != len(l.order) || st.BatchDuplicateLive != 0 || (wantLines > 0 && st.BatchLines != wantLines) {
		t.Errorf("sim stats %+v: want every prompt answered once by the provider, never in two live jobs, %d lines sent", st, wantLines)
	}
}

// TestRunLaneWithFailures: 2,000 prompts per dialect in 4 jobs of 500, two at a time, with 5% errored
// and 2% expired lines: every prompt ends answered (failed lines go out again in new jobs), at half
// the realtime price, each answered once by the provider.
func TestRunLaneWithFailures(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLane(t, d.api, d.model, "{turnaround: 30m, errored: 0.05, expired: 0.02}", 2000)
				j, _, err := batchjournal.Open(batchjournal.Path(filepath.Join(t.TempDir(), "out.jsonl")), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer j.Close()
				out := &output{ok: map[string]batchapi.Result{}}
				if err := l.run(context.Background(), t, j, l.client, out, nil); err != nil {
					t.Fatal(err)
				}
				l.check(t, out, 0)
				if st := l.srv.Stats()["p/"+d.model]; st.BatchFailed == 0 || st.BatchLines != 2000+st.BatchFailed {
					t.Errorf("stats %+v: want failures, each resubmitted once per failure", st)
				}
				if live := j.State().Live(); len(live) != 0 {
					t.Errorf("%d chunks live after the run", len(live))
				}
			})
		})
	}
}

// TestRunLaneEnqueuedLimit: with an enqueued-token limit of 1.5 chunks and a Gate of that size, the
// jobs go out one at a time and none is refused (no token_limit_exceeded).
func TestRunLaneEnqueuedLimit(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLane(t, d.api, d.model, "{turnaround: 10m}", 1000)
				var chunk int64
				for _, id := range l.order[:250] {
					chunk += l.byID[id].Tokens
				}
				l = newLane(t, d.api, d.model, fmt.Sprintf("{turnaround: 10m, enqueued_tokens: %d}", chunk*3/2), 1000)
				j, _, err := batchjournal.Open(batchjournal.Path(filepath.Join(t.TempDir(), "out.jsonl")), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer j.Close()
				out := &output{ok: map[string]batchapi.Result{}}
				start := time.Now()
				err = l.run(context.Background(), t, j, l.client, out, func(o *batchrun.Options) {
					o.Caps = batchapi.Caps{MaxRequests: 250, MaxTokens: chunk * 3 / 2}
					o.Gate = batchapi.NewGate(chunk * 3 / 2)
					o.Jobs = 4
				})
				if err != nil {
					t.Fatal(err)
				}
				l.check(t, out, 1000)
				if el := time.Since(start); el < 40*time.Minute {
					t.Errorf("4 jobs of 10m done in %v: the gate let them overlap", el)
				}
			})
		})
	}
}

var errCrash = errors.New("killed")

// crashing wraps a client and dies at one step, as a SIGKILL there would.
type crashing struct {
	batchapi.Client
	afterUpload, afterCreate bool
}

func (c crashing) Submit(ctx context.Context, ch *batchapi.Chunk, h batchapi.Hooks) (*batchapi.Job, error) {
	if c.afterUpload {
		up := h.Uploaded
		h.Uploaded = func(id string) error {
			if err := up(id); err != nil {
				return err
			}
			return errCrash
		}
	}
	job, err := c.Client.Submit(ctx, ch, h)
	if err == nil && c.afterCreate {
		return nil, errCrash
	}
	return job, err
}

// TestRunLaneCrashAndResume: the run dies after an upload, after a job's creation, while polling,
// or halfway through a download; the journal is reopened (a new process) and the same run
// completes: every prompt answered, each sent to the provider once (no prompt in two live jobs),
// answered once by it.
func TestRunLaneCrashAndResume(t *testing.T) {
	for _, d := range dialects {
		for _, at := range []string{"upload", "create", "poll", "download"} {
			if at == "upload" && d.api != "openai" {
				continue // only OpenAI uploads before creating
			}
			t.Run(d.api+"/"+at, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					l := newLane(t, d.api, d.model, "{turnaround: 20m}", 600)
					path := batchjournal.Path(filepath.Join(t.TempDir(), "out.jsonl"))
					j, _, err := batchjournal.Open(path, nil)
					if err != nil {
						t.Fatal(err)
					}
					out := &output{ok: map[string]batchapi.Result{}}
					ctx, cancel := context.WithCancel(context.Background())
					cl := l.client
					var opts func(*batchrun.Options)
					switch at {
					case "upload":
						cl = crashing{Client: l.client, afterUpload: true}
					case "create":
						cl = crashing{Client: l.client, afterCreate: true}
					case "poll":
						opts = func(o *batchrun.Options) {
							o.OnPoll = func(string, *batchapi.Job) { cancel() }
						}
					case "download":
						opts = func(o *batchrun.Options) {
							next := o.OnResult
							o.OnResult = func(id string, r batchapi.Result, job *batchapi.Job) error {
								if out.delivered == 300 {
									return errCrash
								}
								return next(id, r, job)
							}
						}
					}
					if err := l.run(ctx, t, j, cl, out, opts); err == nil {
						t.Fatal("the crashing run succeeded")
					}
					cancel()
					_ = j.Close()

					j, st, err := batchjournal.Open(path, nil)
					if err != nil {
						t.Fatal(err)
					}
					defer j.Close()
					if at != "download" && len(st.Live()) == 0 {
						t.Fatal("no live chunk after the crash")
					}
					if err := l.run(context.Background(), t, j, l.client, out, nil); err != nil {
						t.Fatal(err)
					}
					l.check(t, out, 600)
				})
			})
		}
	}
}
