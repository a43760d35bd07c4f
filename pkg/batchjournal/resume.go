package batchjournal

import (
	"context"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
)

// Settle is how long after a submission Recover keeps looking for its job before it concludes that
// the provider never created it.
const Settle = 10 * time.Second

// clockSkew widens the window in which Find looks for a job created after its chunk was planned,
// for a provider clock behind ours.
const clockSkew = 10 * time.Minute

// Submit sends a planned chunk (its OpPlanned already appended) through cl, recording each step:
// OpUploaded once the input file exists (OpenAI), OpCreated once the provider job exists. items
// yields the chunk's requests with ChunkCustomID(i) for c.IDs[i]. A crash between the provider
// creating the job and OpCreated is what Find repairs.
func Submit(ctx context.Context, j *Journal, cl batchapi.Client, c *Chunk, items func(yield func(batchapi.Item) error) error) (*batchapi.Job, error) {
	st := j.State()
	if cl.Dialect() == "anthropic" {
		j.untagged.Lock()
		defer j.untagged.Unlock()
	}
	if err := j.Append(Record{Op: OpSubmitting, Chunk: c.ID}); err != nil {
		return nil, err
	}
	job, err := cl.Submit(ctx, &batchapi.Chunk{Tag: batchapi.Tag{Job: st.Job, Chunk: c.ID}, Model: c.Model, Items: items},
		batchapi.Hooks{Uploaded: func(fileID string) error {
			return j.Append(Record{Op: OpUploaded, Chunk: c.ID, FileID: fileID})
		}})
	if err != nil {
		return nil, err
	}
	if err := j.Append(Record{Op: OpCreated, Chunk: c.ID, BatchID: job.ID}); err != nil {
		return job, err
	}
	return job, nil
}

// Find returns the provider job of a live chunk, or nil when the provider has none (it was never
// created: the chunk may be submitted again). A chunk with a recorded batch id is looked up
// directly, one never submitted has none; otherwise the provider's list is searched for the job
// tag (OpenAI metadata, Gemini display name). Anthropic batches carry no tag: Submit sends at most
// one of them at a time per journal, so the match is the earliest batch created since the chunk's
// submission with exactly its number of requests and not claimed by another chunk. (A batch of the
// same size created in that window by another program on the same account could be taken for it.)
func Find(ctx context.Context, cl batchapi.Client, st *State, c *Chunk) (*batchapi.Job, error) {
	if c.BatchID != "" {
		return cl.Get(ctx, c.BatchID)
	}
	if c.SubmittedAt.IsZero() {
		return nil, nil
	}
	jobs, err := cl.List(ctx, batchapi.Filter{Job: st.Job, Since: c.SubmittedAt.Add(-clockSkew)})
	if err != nil {
		return nil, fmt.Errorf("find the job of chunk %s: %w", c.ID, err)
	}
	claimed := map[string]bool{}
	for _, o := range st.Chunks {
		if o.BatchID != "" {
			claimed[o.BatchID] = true
		}
	}
	var best *batchapi.Job
	for _, jb := range jobs {
		switch {
		case claimed[jb.ID]:
		case jb.Tag.Chunk != "":
			if jb.Tag.Job == st.Job && jb.Tag.Chunk == c.ID {
				return jb, nil
			}
		case cl.Dialect() == "anthropic" && jb.Total == len(c.IDs):
			if best == nil || jb.CreatedAt.Before(best.CreatedAt) {
				best = jb
			}
		}
	}
	return best, nil
}

// Recover finds the provider job of a live chunk after a restart and records it (OpCreated) when
// the crash came before that record; nil, nil means no provider job exists for the chunk.
//
// A chunk that was being submitted when the process died may show up on the provider's list only
// after the provider has read the whole request (and lists may lag): before concluding that no job
// exists, Recover waits until Settle has passed since the submission and looks again.
func Recover(ctx context.Context, j *Journal, cl batchapi.Client, c *Chunk) (*batchapi.Job, error) {
	job, err := Find(ctx, cl, j.State(), c)
	if err == nil && job == nil && !c.SubmittedAt.IsZero() {
		if wait := c.SubmittedAt.Add(Settle).Sub(j.now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		job, err = Find(ctx, cl, j.State(), c)
	}
	if err != nil || job == nil {
		return job, err
	}
	if c.BatchID == "" {
		if err := j.Append(Record{Op: OpCreated, Chunk: c.ID, BatchID: job.ID}); err != nil {
			return nil, err
		}
	}
	return job, nil
}
