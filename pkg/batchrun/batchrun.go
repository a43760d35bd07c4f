// Package batchrun sends one lane's prompts (one provider and model) as provider batch jobs, crash-
// safely: it plans chunks within the job caps, records each in the journal before submitting it,
// waits for the enqueued-token budget, submits, polls, downloads, and hands every line back keyed
// by prompt id. Run again with the same journal after a crash, it first picks up the live chunks
// (finding a job created just before the crash on the provider's list), so no prompt is ever in two
// live jobs. It is the piece the engine's batch dispatcher drives.
package batchrun

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/provider"
)

// Prompt is one prompt of the lane: its id, request and token cost (prompt estimate + max tokens,
// what counts against the enqueued-token limit).
type Prompt struct {
	ID      string
	Request *provider.Request
	Tokens  int64
}

// Options configure Run.
type Options struct {
	Journal  *batchjournal.Journal
	Client   batchapi.Client
	Provider string
	Model    string
	Caps     batchapi.Caps
	Gate     *batchapi.Gate // the model's enqueued-token budget; nil = none
	Poll     batchapi.PollPolicy
	// Jobs bounds the provider jobs in flight at once; 1 when 0.
	Jobs int
	// MaxRounds bounds how often a retryable failed line is sent again in a new job; 3 when 0.
	MaxRounds int
	// Lookup returns the prompt of an id: chunks are streamed to the provider by re-reading their
	// prompts, so a chunk's requests are never all held in memory.
	Lookup func(id string) (Prompt, error)
	// OnResult receives every line of every downloaded job with its prompt id, before the job is
	// recorded as downloaded: a crash in between delivers the job's lines again on the next run
	// (the output's resume rules keep one line per id). Lines that will be sent again in a new job
	// are not delivered. OnResult is called from one goroutine at a time.
	OnResult func(id string, r batchapi.Result, job *batchapi.Job) error
	// Flush (may be nil) returns once every line OnResult received is durably in the output; the
	// chunk is recorded as downloaded only after it, so a crash never loses a delivered answer.
	Flush func(ctx context.Context) error
	// OnPoll (may be nil) sees every polled state of a job.
	OnPoll func(chunk string, job *batchapi.Job)
}

// Run sends prompts (those already answered left out by the caller) and returns when every prompt
// has a delivered result, or on the first error. Prompts that sit in a live chunk of the journal are
// not submitted again: that chunk is resumed instead.
func Run(ctx context.Context, o Options, prompts func(yield func(Prompt) error) error) error {
	if o.Jobs <= 0 {
		o.Jobs = 1
	}
	if o.MaxRounds <= 0 {
		o.MaxRounds = 3
	}
	r := &runner{o: o, rounds: map[string]int{}}
	g, gctx := errgroup.WithContext(ctx)
	r.g, r.ctx = g, gctx
	r.slots = make(chan struct{}, o.Jobs)

	// 1. Resume the live chunks of this lane.
	st := o.Journal.State()
	skip := map[string]bool{}
	for _, c := range st.Live() {
		if c.Provider != o.Provider || c.Model != o.Model {
			continue
		}
		job, err := batchjournal.Recover(ctx, o.Journal, o.Client, c)
		if err != nil {
			return err
		}
		if job == nil {
			// Never created: its prompts are free and come again from prompts.
			if err := o.Journal.Append(batchjournal.Record{Op: batchjournal.OpAbandoned, Chunk: c.ID, Reason: "no provider job after a restart"}); err != nil {
				return err
			}
			continue
		}
		for _, id := range c.IDs {
			skip[id] = true
		}
		if o.Gate != nil {
			o.Gate.Hold(c.Tokens) // already enqueued at the provider
		}
		r.start(c, job)
	}

	// 2. Plan and submit the rest.
	err := r.plan(gctx, func(yield func(Prompt) error) error {
		return prompts(func(p Prompt) error {
			if skip[p.ID] {
				return nil
			}
			return yield(p)
		})
	})
	if err != nil {
		_ = g.Wait()
		return err
	}
	// 3. Retry rounds: lines that failed retryably go out again in new jobs.
	for {
		if err := g.Wait(); err != nil {
			return err
		}
		retry := r.takeRetries()
		if len(retry) == 0 {
			return nil
		}
		g, gctx = errgroup.WithContext(ctx)
		r.g, r.ctx = g, gctx
		if err := r.plan(gctx, func(yield func(Prompt) error) error {
			for _, p := range retry {
				if err := yield(p); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			_ = g.Wait()
			return err
		}
	}
}

type runner struct {
	o     Options
	g     *errgroup.Group
	ctx   context.Context
	slots chan struct{}

	mu      sync.Mutex
	rounds  map[string]int
	retries []Prompt
	deliver sync.Mutex // OnResult one call at a time
}

// plan cuts prompts into chunks and submits each as it is cut.
func (r *runner) plan(ctx context.Context, prompts func(yield func(Prompt) error) error) error {
	pl := batchapi.NewPlanner(r.o.Caps)
	submit := func(cp *batchapi.ChunkPlan) error {
		if cp == nil {
			return nil
		}
		// The budget is taken before the chunk is recorded, so a recorded chunk is always one
		// that may be submitted at once.
		if r.o.Gate != nil {
			if err := r.o.Gate.Acquire(ctx, cp.Tokens); err != nil {
				return err
			}
		}
		c, err := r.o.Journal.Plan(batchjournal.Record{Provider: r.o.Provider, Model: r.o.Model, IDs: cp.IDs,
			Tokens: cp.Tokens, Bytes: cp.Bytes})
		if err != nil {
			if r.o.Gate != nil {
				r.o.Gate.Release(cp.Tokens)
			}
			return err
		}
		r.start(c, nil)
		return nil
	}
	err := prompts(func(p Prompt) error {
		line, err := r.o.Client.Encode(batchapi.Item{CustomID: batchapi.ChunkCustomID(r.o.Caps.MaxRequests), Request: p.Request})
		if err != nil {
			return err
		}
		full, err := pl.Add(p.ID, len(line), p.Tokens)
		if err != nil {
			return err
		}
		return submit(full)
	})
	if err != nil {
		return err
	}
	return submit(pl.Flush())
}

// start runs one chunk to its end in the group: submit (unless job is given), wait, download.
func (r *runner) start(c *batchjournal.Chunk, job *batchapi.Job) {
	r.g.Go(func() error {
		select {
		case r.slots <- struct{}{}:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
		defer func() { <-r.slots }()
		if r.o.Gate != nil {
			defer r.o.Gate.Release(c.Tokens)
		}
		return r.run(r.ctx, c, job)
	})
}

func (r *runner) run(ctx context.Context, c *batchjournal.Chunk, job *batchapi.Job) error {
	var err error
	if job == nil {
		job, err = batchjournal.Submit(ctx, r.o.Journal, r.o.Client, c, func(yield func(batchapi.Item) error) error {
			for i, id := range c.IDs {
				p, err := r.o.Lookup(id)
				if err != nil {
					return err
				}
				if err := yield(batchapi.Item{CustomID: batchapi.ChunkCustomID(i), Request: p.Request}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s/%s: chunk %s: %w", r.o.Provider, r.o.Model, c.ID, err)
		}
	}
	watched := false
	if !job.Status.Ended() {
		watched = true
		id := job.ID
		job, err = batchapi.Wait(ctx, r.o.Client, id, r.o.Poll, func(j *batchapi.Job) {
			if r.o.OnPoll != nil {
				r.o.OnPoll(c.ID, j)
			}
		})
		if err != nil {
			return fmt.Errorf("%s/%s: chunk %s: poll %s: %w", r.o.Provider, r.o.Model, c.ID, id, err)
		}
	}
	if err := r.o.Journal.Append(batchjournal.Record{Op: batchjournal.OpEnded, Chunk: c.ID, Status: string(job.Status), Watched: watched}); err != nil {
		return err
	}
	if job.Status == batchapi.Failed {
		// The whole job was refused (e.g. token_limit_exceeded): its prompts go out again.
		for _, id := range c.IDs {
			r.retry(id, batchapi.Result{Outcome: batchapi.LineErrored, Retryable: true,
				Err: &provider.APIError{Provider: r.o.Provider, Model: r.o.Model, Type: job.FailureCode, Message: job.Failure}}, job)
		}
	} else {
		seen := 0
		err = r.o.Client.Results(ctx, job, func(res batchapi.Result) error {
			var i int
			if _, err := fmt.Sscanf(res.CustomID, "r%d", &i); err != nil || i < 0 || i >= len(c.IDs) {
				return fmt.Errorf("result for unknown custom_id %q", res.CustomID)
			}
			seen++
			return r.retry(c.IDs[i], res, job)
		})
		if err != nil {
			return fmt.Errorf("%s/%s: chunk %s: download %s: %w", r.o.Provider, r.o.Model, c.ID, job.ID, err)
		}
		if seen < len(c.IDs) {
			return fmt.Errorf("%s/%s: chunk %s: job %s returned %d of %d lines", r.o.Provider, r.o.Model, c.ID, job.ID, seen, len(c.IDs))
		}
	}
	if r.o.Flush != nil {
		if err := r.o.Flush(ctx); err != nil {
			return err
		}
	}
	return r.o.Journal.Append(batchjournal.Record{Op: batchjournal.OpDownloaded, Chunk: c.ID, OK: job.Total - job.Failed, Failed: job.Failed})
}

// retry delivers a line, or keeps it for a new job when it failed retryably and has rounds left.
func (r *runner) retry(id string, res batchapi.Result, job *batchapi.Job) error {
	if res.Outcome != batchapi.LineOK && res.Retryable {
		r.mu.Lock()
		r.rounds[id]++
		again := r.rounds[id] < r.o.MaxRounds
		r.mu.Unlock()
		if again {
			p, err := r.o.Lookup(id)
			if err != nil {
				return err
			}
			r.mu.Lock()
			r.retries = append(r.retries, p)
			r.mu.Unlock()
			return nil
		}
	}
	r.deliver.Lock()
	defer r.deliver.Unlock()
	return r.o.OnResult(id, res, job)
}

func (r *runner) takeRetries() []Prompt {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.retries
	r.retries = nil
	return out
}
