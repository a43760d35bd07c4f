package batchjournal

import (
	"context"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
)

// clockSkew widens the window in which Find looks for a job created after its chunk was planned,
// for a provider clock behind ours.
const clockSkew = 10 * time.Minute

// Submit sends a planned chunk (its OpPlanned already appended) through cl, recording each step:
// OpUploaded once the input file exists (OpenAI), OpCreated once the provider job exists. items
// yields the chunk's requests with ChunkCustomID(i) for c.IDs[i]. A crash between the provider
// creating the job and OpCreated is what Find repairs.
func Submit(ctx context.Context, j *Journal, cl batchapi.Client, c *Chunk, items func(yield func(batchapi.Item) error) error) (*batchapi.Job, error) {
	st := j.State()
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
// directly; otherwise the provider's list is searched for the job tag (OpenAI metadata, Gemini
// display name). Anthropic batches carry no tag: the match is the oldest batch created since the
// chunk was planned with exactly the chunk's number of requests and not claimed by another chunk.
func Find(ctx context.Context, cl batchapi.Client, st *State, c *Chunk) (*batchapi.Job, error) {
	if c.BatchID != "" {
		return cl.Get(ctx, c.BatchID)
	}
	jobs, err := cl.List(ctx, batchapi.Filter{Job: st.Job, Since: c.PlannedAt.Add(-clockSkew)})
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
func Recover(ctx context.Context, j *Journal, cl batchapi.Client, c *Chunk) (*batchapi.Job, error) {
	job, err := Find(ctx, cl, j.State(), c)
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
