package batchapi_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/sim"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

// dialects are the three sim providers of testConfig, one per wire format, with their model.
var dialects = []struct{ provider, model string }{
	{"sim-openai", "gpt-sim"}, {"sim-anthropic", "claude-sim"}, {"sim-gemini", "gemini-sim"},
}

// testConfig is three sim providers (one per dialect) whose sim.batch section is simBatch.
func testConfig(t testing.TB, simBatch string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("providers:\n")
	for _, d := range dialects {
		api := strings.TrimPrefix(d.provider, "sim-")
		fmt.Fprintf(&b, `  - name: %s
    type: sim
    batch: true
    models: [{name: %s, input_per_mtok: 0.15, output_per_mtok: 0.6, max_output_tokens: 4096, context_window: 128000}]
    sim: {api: %s, batch: %s}
`, d.provider, d.model, api, simBatch)
	}
	cfg, err := config.Parse("test.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// env is one simulator and a batch client per dialect, in process.
type env struct {
	cfg     *config.Config
	srv     *sim.Server
	clients map[string]batchapi.Client
}

func newEnv(t testing.TB, simBatch string) *env {
	t.Helper()
	cfg := testConfig(t, simBatch)
	srv := sim.New(cfg, sim.Options{})
	hc := &http.Client{Transport: srv.Transport()}
	e := &env{cfg: cfg, srv: srv, clients: map[string]batchapi.Client{}}
	for _, p := range cfg.Providers {
		c, err := batchapi.New(p, batchapi.Options{Client: hc})
		if err != nil {
			t.Fatal(err)
		}
		e.clients[p.Name] = c
	}
	return e
}

// prompts returns n requests for model; prompt i asks "question i".
func prompts(model string, from, n int) []*provider.Request {
	out := make([]*provider.Request, n)
	for i := range out {
		out[i] = &provider.Request{Model: model, MaxTokens: 200,
			Messages: []request.Message{{Role: "user", Content: request.Content{Text: fmt.Sprintf("question %d of the batch test", from+i)}}}}
	}
	return out
}

func chunk(job, name, model string, reqs []*provider.Request) *batchapi.Chunk {
	return &batchapi.Chunk{Tag: batchapi.Tag{Job: job, Chunk: name}, Model: model,
		Items: func(yield func(batchapi.Item) error) error {
			for i, r := range reqs {
				if err := yield(batchapi.Item{CustomID: batchapi.ChunkCustomID(i), Request: r}); err != nil {
					return err
				}
			}
			return nil
		}}
}

// collect downloads every result of job, keyed by custom_id, failing on a duplicate.
func collect(t *testing.T, c batchapi.Client, job *batchapi.Job) map[string]batchapi.Result {
	t.Helper()
	out := map[string]batchapi.Result{}
	err := c.Results(context.Background(), job, func(r batchapi.Result) error {
		if _, dup := out[r.CustomID]; dup {
			return fmt.Errorf("custom_id %s twice", r.CustomID)
		}
		out[r.CustomID] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func textOf(r *provider.Request) []string { return []string{r.Messages[0].Content.Text} }

// TestBatchEachDialectAnswersInFullAtHalfPrice: 2,000 prompts per dialect submitted as one job,
// polled until done, downloaded; every answer is the simulator's realtime answer and the batch
// price is half the realtime price of the same usage.
func TestBatchEachDialectAnswersInFullAtHalfPrice(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.provider, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, "{turnaround: 20m}")
				c := e.clients[d.provider]
				_, m := e.cfg.Lookup(d.provider, d.model)
				reqs := prompts(d.model, 0, 2000)
				var uploaded string
				start := time.Now()
				job, err := c.Submit(context.Background(), chunk("job1", "c1", d.model, reqs), batchapi.Hooks{
					Uploaded: func(id string) error { uploaded = id; return nil }})
				if err != nil {
					t.Fatal(err)
				}
				if (uploaded != "") != (c.Dialect() == "openai") {
					t.Errorf("Uploaded hook called with %q for %s", uploaded, c.Dialect())
				}
				if job.Status.Ended() || job.Total != 2000 {
					t.Fatalf("new job %+v", job)
				}
				polls := 0
				job, err = batchapi.Wait(context.Background(), c, job.ID, batchapi.PollPolicy{First: 30 * time.Second}, func(*batchapi.Job) { polls++ })
				if err != nil {
					t.Fatal(err)
				}
				if job.Status != batchapi.Completed || job.Done != 2000 || job.Failed != 0 {
					t.Fatalf("ended job %+v", job)
				}
				if el := time.Since(start); el < 20*time.Minute || el > 30*time.Minute {
					t.Errorf("job seen ended after %v, want within the backoff of its 20m turnaround", el)
				}
				if polls < 5 {
					t.Errorf("%d polls", polls)
				}
				res := collect(t, c, job)
				if len(res) != 2000 {
					t.Fatalf("%d results", len(res))
				}
				var realtime, batch float64
				for i, r := range reqs {
					got := res[batchapi.ChunkCustomID(i)]
					if got.Outcome != batchapi.LineOK {
						t.Fatalf("line %d: %+v", i, got)
					}
					want, out, _ := sim.Reply(textOf(r), r.MaxTokens)
					in := sim.PromptTokens(textOf(r))
					if got.Response.Content != want || got.Response.Usage.InputTokens != in || got.Response.Usage.OutputTokens != out {
						t.Fatalf("line %d: %q %+v, want %q in %d out %d", i, got.Response.Content, got.Response.Usage, want, in, out)
					}
					realtime += tokens.Cost(m, in, out)
					batch += batchapi.Cost(m, got.Response.Usage.InputTokens, got.Response.Usage.OutputTokens, e.cfg.Providers[0].Batch.DiscountOrDefault())
				}
				if math.Abs(batch-realtime/2) > 1e-9 || batch == 0 {
					t.Errorf("batch price %.10f, realtime %.10f: want half", batch, realtime)
				}
				st := e.srv.Stats()[d.provider+"/"+d.model]
				if st.BatchLines != 2000 || st.BatchOK != 2000 || st.BatchDuplicateLive != 0 || st.Requests != 0 {
					t.Errorf("sim stats %+v", st)
				}
				jobs, err := c.List(context.Background(), batchapi.Filter{Job: "job1"})
				if err != nil || len(jobs) != 1 || jobs[0].ID != job.ID {
					t.Fatalf("list: %v %+v", err, jobs)
				}
				if d.provider != "sim-anthropic" && jobs[0].Tag != (batchapi.Tag{Job: "job1", Chunk: "c1"}) {
					t.Errorf("tag %+v", jobs[0].Tag)
				}
				if other, _ := c.List(context.Background(), batchapi.Filter{Job: "job2"}); d.provider != "sim-anthropic" && len(other) != 0 {
					t.Errorf("job2 lists %d jobs", len(other))
				}
			})
		})
	}
}

// TestBatchPartialFailuresAreRetryable: errored and expired lines come back as retryable errors;
// resubmitting exactly those (a new job) answers them, and no prompt is answered twice.
func TestBatchPartialFailuresAreRetryable(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.provider, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, "{turnaround: 5m, errored: 0.1, expired: 0.05}")
				c := e.clients[d.provider]
				reqs := prompts(d.model, 0, 400)
				pending := map[string]*provider.Request{}
				for i, r := range reqs {
					pending[fmt.Sprint(i)] = r
				}
				answered := map[string]string{}
				for round := 1; len(pending) > 0; round++ {
					if round > 6 {
						t.Fatalf("%d prompts still failing after 5 rounds", len(pending))
					}
					var ids []string
					var sub []*provider.Request
					for id, r := range pending {
						ids, sub = append(ids, id), append(sub, r)
					}
					job, err := c.Submit(context.Background(), chunk("j", fmt.Sprint(round), d.model, sub), batchapi.Hooks{})
					if err != nil {
						t.Fatal(err)
					}
					if job, err = batchapi.Wait(context.Background(), c, job.ID, batchapi.PollPolicy{First: time.Minute}, nil); err != nil {
						t.Fatal(err)
					}
					failed := 0
					for cid, r := range collect(t, c, job) {
						var i int
						fmt.Sscanf(cid, "r%d", &i)
						id := ids[i]
						switch r.Outcome {
						case batchapi.LineOK:
							if _, twice := answered[id]; twice {
								t.Fatalf("prompt %s answered twice", id)
							}
							answered[id] = r.Response.Content
							delete(pending, id)
						case batchapi.LineErrored, batchapi.LineExpired:
							failed++
							if !r.Retryable || r.Err == nil {
								t.Fatalf("%s line not retryable: %+v", r.Outcome, r)
							}
						default:
							t.Fatalf("outcome %s", r.Outcome)
						}
					}
					if round == 1 && (failed < 20 || failed > 110) {
						t.Errorf("round 1: %d of 400 failed, want about 15%%", failed)
					}
					if round == 1 && job.Failed != failed {
						t.Errorf("job counts %d failed, results %d", job.Failed, failed)
					}
				}
				for i, r := range reqs {
					want, _, _ := sim.Reply(textOf(r), r.MaxTokens)
					if answered[fmt.Sprint(i)] != want {
						t.Fatalf("prompt %d: %q", i, answered[fmt.Sprint(i)])
					}
				}
				if st := e.srv.Stats()[d.provider+"/"+d.model]; st.BatchOK != 400 || st.BatchDuplicateLive != 0 {
					t.Errorf("sim stats %+v", st)
				}
			})
		})
	}
}

// TestBatchCancelKeepsWhatCameBack: a job cancelled halfway through its turnaround ends cancelled;
// the lines finished before the cancel are answered, the rest are canceled and retryable.
func TestBatchCancelKeepsWhatCameBack(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.provider, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, "{turnaround: 1h}")
				c := e.clients[d.provider]
				job, err := c.Submit(context.Background(), chunk("j", "c", d.model, prompts(d.model, 0, 100)), batchapi.Hooks{})
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(30 * time.Minute) // virtual time: half the turnaround
				if _, err := c.Cancel(context.Background(), job.ID); err != nil {
					t.Fatal(err)
				}
				job, err = batchapi.Wait(context.Background(), c, job.ID, batchapi.PollPolicy{First: time.Second}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if job.Status != batchapi.Cancelled {
					t.Fatalf("status %s", job.Status)
				}
				n := map[batchapi.Outcome]int{}
				for _, r := range collect(t, c, job) {
					n[r.Outcome]++
					if r.Outcome == batchapi.LineCanceled && !r.Retryable {
						t.Fatal("canceled line not retryable")
					}
				}
				if n[batchapi.LineOK] != 50 || n[batchapi.LineCanceled] != 50 {
					t.Errorf("outcomes %v, want 50 answered and 50 canceled", n)
				}
			})
		})
	}
}

// TestBatchWindowExpiry: a job whose turnaround exceeds the completion window ends expired at the
// window; the lines finished by then are answered, the rest expired and retryable.
func TestBatchWindowExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, "{turnaround: 4h, window: 1h}")
		c := e.clients["sim-openai"]
		job, err := c.Submit(context.Background(), chunk("j", "c", "gpt-sim", prompts("gpt-sim", 0, 40)), batchapi.Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		if job, err = batchapi.Wait(context.Background(), c, job.ID, batchapi.PollPolicy{First: time.Minute, Max: 10 * time.Minute}, nil); err != nil {
			t.Fatal(err)
		}
		if job.Status != batchapi.Expired {
			t.Fatalf("status %s", job.Status)
		}
		n := map[batchapi.Outcome]int{}
		for _, r := range collect(t, c, job) {
			n[r.Outcome]++
		}
		if n[batchapi.LineOK] != 10 || n[batchapi.LineExpired] != 30 {
			t.Errorf("outcomes %v, want 10 answered, 30 expired", n)
		}
	})
}

// TestEnqueuedTokenLimit: over the simulator's enqueued-token limit OpenAI fails the job
// (token_limit_exceeded) and the others refuse it with 429; a Gate sized to the limit makes the
// second job wait for the first to end instead.
func TestEnqueuedTokenLimit(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.provider, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reqs := prompts(d.model, 0, 10)
				var per int64
				for _, r := range reqs {
					per += int64(sim.PromptTokens(textOf(r)) + r.MaxTokens)
				}
				e := newEnv(t, fmt.Sprintf("{turnaround: 10m, enqueued_tokens: %d}", per+per/2))
				c := e.clients[d.provider]
				ctx := context.Background()
				first, err := c.Submit(ctx, chunk("j", "a", d.model, reqs), batchapi.Hooks{})
				if err != nil {
					t.Fatal(err)
				}
				second, err := c.Submit(ctx, chunk("j", "b", d.model, prompts(d.model, 10, 10)), batchapi.Hooks{})
				var ae *provider.APIError
				switch {
				case d.provider == "sim-openai":
					if err != nil || second.Status != batchapi.Failed || second.FailureCode != "token_limit_exceeded" {
						t.Fatalf("second job: %v %+v", err, second)
					}
				case !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests:
					t.Fatalf("second job: %v", err)
				}

				gate := batchapi.NewGate(per + per/2)
				if err := gate.Acquire(ctx, per); err != nil {
					t.Fatal(err)
				}
				go func() {
					j, err := batchapi.Wait(ctx, c, first.ID, batchapi.PollPolicy{First: time.Minute}, nil)
					if err == nil && j.Status.Ended() {
						gate.Release(per)
					}
				}()
				start := time.Now()
				if err := gate.Acquire(ctx, per); err != nil {
					t.Fatal(err)
				}
				if time.Since(start) < 10*time.Minute {
					t.Errorf("second acquire after %v, before the first job ended", time.Since(start))
				}
				third, err := c.Submit(ctx, chunk("j", "c", d.model, prompts(d.model, 20, 10)), batchapi.Hooks{})
				if err != nil || third.Status == batchapi.Failed {
					t.Fatalf("after the gate: %v %+v", err, third)
				}
			})
		})
	}
}

func TestPlannerCutsWithinCaps(t *testing.T) {
	p := batchapi.NewPlanner(batchapi.Caps{MaxRequests: 3, MaxBytes: 4<<10 + 250, MaxTokens: 1000})
	var chunks []*batchapi.ChunkPlan
	add := func(id string, size int, tok int64) {
		t.Helper()
		c, err := p.Add(id, size, tok)
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			chunks = append(chunks, c)
		}
	}
	add("a", 100, 10)
	add("b", 100, 10)
	add("c", 100, 10) // bytes: 300 > 250 → new chunk at c
	add("d", 10, 10)
	add("e", 10, 995) // tokens: 10+10+995 > 1000 → new chunk at e
	add("f", 10, 1)
	add("g", 10, 1)
	add("h", 10, 1) // requests: 3 → new chunk at h
	if last := p.Flush(); last != nil {
		chunks = append(chunks, last)
	}
	var got []string
	for _, c := range chunks {
		got = append(got, strings.Join(c.IDs, ""))
	}
	if strings.Join(got, " ") != "ab cd efg h" {
		t.Errorf("chunks %q", got)
	}
	if _, err := p.Add("huge", 10, 2000); err == nil {
		t.Error("a prompt above the token cap was accepted")
	}
}
