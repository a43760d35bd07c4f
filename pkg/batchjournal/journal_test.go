package batchjournal_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

func TestJournalReplaysAndRepairsATornLine(t *testing.T) {
	path := batchjournal.Path(filepath.Join(t.TempDir(), "out.jsonl"))
	j, st, err := batchjournal.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	tag := st.Job
	if !strings.HasPrefix(tag, "lb") {
		t.Fatalf("job tag %q", tag)
	}
	for _, r := range []batchjournal.Record{
		{Op: batchjournal.OpPlanned, Chunk: "c1", Provider: "p", Model: "m", IDs: []string{"a", "b"}},
		{Op: batchjournal.OpPlanned, Chunk: "c2", Provider: "p", Model: "m", IDs: []string{"c"}},
		{Op: batchjournal.OpUploaded, Chunk: "c1", FileID: "file-1"},
		{Op: batchjournal.OpCreated, Chunk: "c1", BatchID: "batch_1"},
		{Op: batchjournal.OpCreated, Chunk: "c2", BatchID: "batch_2"},
		{Op: batchjournal.OpDownloaded, Chunk: "c2", OK: 1},
	} {
		if err := j.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Append(batchjournal.Record{Op: batchjournal.OpCreated, Chunk: "zz"}); err == nil {
		t.Error("an op on an unknown chunk was written")
	}
	if err := j.Append(batchjournal.Record{Op: batchjournal.OpPlanned, Chunk: "c1"}); err == nil {
		t.Error("a chunk planned twice was written")
	}
	_ = j.Close()
	// A crash mid-append leaves a line without its newline.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"op":"ended","chunk":"c1","sta`)
	_ = f.Close()

	j, st, err = batchjournal.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if st.Job != tag {
		t.Errorf("job tag %q after reopen, was %q", st.Job, tag)
	}
	live := st.Live()
	if len(live) != 1 || live[0].ID != "c1" || live[0].FileID != "file-1" || live[0].BatchID != "batch_1" || live[0].Status != "" {
		t.Fatalf("live %+v", live)
	}
	if ids := st.LiveIDs(); len(ids) != 2 || ids["a"] != "c1" || ids["c"] != "" {
		t.Errorf("live ids %v", ids)
	}
	if err := j.Append(batchjournal.Record{Op: batchjournal.OpEnded, Chunk: "c1", Status: "completed"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), `"sta{`) || strings.Count(string(b), "\n") != 8 {
		t.Errorf("torn line not cut off:\n%s", b)
	}
}

func TestJournalBadLineNamesFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl.batches")
	_ = os.WriteFile(path, []byte("{\"op\":\"job\",\"job\":\"lbx\"}\n{\"op\":\"created\",\"chunk\":\"c9\"}\n"), 0o644)
	_, _, err := batchjournal.Open(path, nil)
	if err == nil || !strings.Contains(err.Error(), path+":2:") || !strings.Contains(err.Error(), "never planned") {
		t.Fatalf("error %v", err)
	}
}

// crashAfterCreate is a client whose Submit dies right after the provider created the job, before
// the journal could record it: what a SIGKILL at that instant leaves behind.
type crashAfterCreate struct{ batchapi.Client }

var errCrash = errors.New("killed")

func (c crashAfterCreate) Submit(ctx context.Context, ch *batchapi.Chunk, h batchapi.Hooks) (*batchapi.Job, error) {
	if _, err := c.Client.Submit(ctx, ch, h); err != nil {
		return nil, err
	}
	return nil, errCrash
}

func reqs(model string, from, n int) []*provider.Request {
	out := make([]*provider.Request, n)
	for i := range out {
		out[i] = &provider.Request{Model: model, MaxTokens: 100,
			Messages: []request.Message{{Role: "user", Content: request.Content{Text: fmt.Sprintf("prompt %d", from+i)}}}}
	}
	return out
}

func items(rs []*provider.Request) func(func(batchapi.Item) error) error {
	return func(yield func(batchapi.Item) error) error {
		for i, r := range rs {
			if err := yield(batchapi.Item{CustomID: batchapi.ChunkCustomID(i), Request: r}); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestRecoverAfterCrash: per dialect, chunk c1 is submitted and recorded; chunk c2's process dies
// after the provider created its job but before OpCreated. Reopening the journal shows c2 live
// without a batch id; Recover finds its job on the provider's list (by tag, or for Anthropic by
// creation time and size), and both chunks complete without a prompt submitted twice. A crash
// after an upload (OpenAI) leaves no job: Recover reports none, so the chunk may be sent again.
func TestRecoverAfterCrash(t *testing.T) {
	for _, d := range []struct{ api, model string }{{"openai", "gpt-sim"}, {"anthropic", "claude-sim"}, {"gemini", "gemini-sim"}} {
		t.Run(d.api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf(
					"providers:\n  - {name: p, type: sim, sim: {api: %s, batch: {turnaround: 10m}}, models: [{name: %s}]}\n", d.api, d.model)))
				if err != nil {
					t.Fatal(err)
				}
				srv := sim.New(cfg, sim.Options{})
				cl, err := batchapi.New(cfg.Providers[0], batchapi.Options{Client: &http.Client{Transport: srv.Transport()}})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				path := batchjournal.Path(filepath.Join(t.TempDir(), "out.jsonl"))
				j, st, err := batchjournal.Open(path, nil)
				if err != nil {
					t.Fatal(err)
				}
				sizes := map[string]int{"c1": 30, "c2": 20}
				chunkReqs := map[string][]*provider.Request{"c1": reqs(d.model, 0, 30), "c2": reqs(d.model, 30, 20)}
				for _, id := range []string{"c1", "c2"} {
					ids := make([]string, sizes[id])
					for i := range ids {
						ids[i] = fmt.Sprintf("%s-%d", id, i)
					}
					if err := j.Append(batchjournal.Record{Op: batchjournal.OpPlanned, Chunk: id, Provider: "p", Model: d.model, IDs: ids}); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := batchjournal.Submit(ctx, j, cl, st.Chunk("c1"), items(chunkReqs["c1"])); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Minute)
				if _, err := batchjournal.Submit(ctx, j, crashAfterCreate{cl}, st.Chunk("c2"), items(chunkReqs["c2"])); !errors.Is(err, errCrash) {
					t.Fatalf("crash: %v", err)
				}
				_ = j.Close()

				j, st, err = batchjournal.Open(path, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer j.Close()
				if live := st.Live(); len(live) != 2 || live[1].BatchID != "" {
					t.Fatalf("live after the crash: %+v", live)
				}
				for _, c := range st.Live() {
					job, err := batchjournal.Recover(ctx, j, cl, c)
					if err != nil || job == nil {
						t.Fatalf("recover %s: %v %v", c.ID, job, err)
					}
					if job, err = batchapi.Wait(ctx, cl, job.ID, batchapi.PollPolicy{First: time.Minute}, nil); err != nil {
						t.Fatal(err)
					}
					n := 0
					if err := cl.Results(ctx, job, func(r batchapi.Result) error {
						if r.Outcome != batchapi.LineOK {
							return fmt.Errorf("%s: %s", r.CustomID, r.Outcome)
						}
						n++
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					if n != sizes[c.ID] {
						t.Fatalf("chunk %s: %d results, want %d", c.ID, n, sizes[c.ID])
					}
					if err := j.Append(batchjournal.Record{Op: batchjournal.OpDownloaded, Chunk: c.ID, OK: n}); err != nil {
						t.Fatal(err)
					}
				}
				if len(j.State().Live()) != 0 || st.Chunk("c2").BatchID == "" {
					t.Errorf("after recovery: live %d, c2 batch %q", len(j.State().Live()), st.Chunk("c2").BatchID)
				}
				stats := srv.Stats()["p/"+d.model]
				if stats.BatchLines != 50 || stats.BatchOK != 50 || stats.BatchDuplicateLive != 0 {
					t.Errorf("sim stats %+v: want 50 lines submitted once and answered once", stats)
				}

				if d.api == "openai" {
					// Killed right after the upload was recorded: no job exists, so the chunk is free.
					if err := j.Append(batchjournal.Record{Op: batchjournal.OpPlanned, Chunk: "c3", Model: d.model, IDs: []string{"x"}}); err != nil {
						t.Fatal(err)
					}
					c3 := j.State().Chunk("c3")
					_, err := cl.Submit(ctx, &batchapi.Chunk{Tag: batchapi.Tag{Job: st.Job, Chunk: "c3"}, Model: d.model, Items: items(reqs(d.model, 99, 1))},
						batchapi.Hooks{Uploaded: func(id string) error {
							if err := j.Append(batchjournal.Record{Op: batchjournal.OpUploaded, Chunk: "c3", FileID: id}); err != nil {
								return err
							}
							return errCrash
						}})
					if !errors.Is(err, errCrash) || c3.FileID == "" {
						t.Fatalf("upload crash: %v, file %q", err, c3.FileID)
					}
					if job, err := batchjournal.Recover(ctx, j, cl, c3); err != nil || job != nil {
						t.Fatalf("recover after upload only: %+v %v", job, err)
					}
				}
			})
		})
	}
}
