package batchapi

import (
	"context"
	"fmt"
	"sync"
)

// Caps bound one provider job: lines, upload bytes and tokens (the enqueued-token limit of the
// model, so that one job alone never exceeds it). A zero field is no bound.
type Caps struct {
	MaxRequests int
	MaxBytes    int64
	MaxTokens   int64
}

// envelopeBytes is room kept under MaxBytes for what surrounds the lines (multipart headers, the
// JSON around an inline array).
const envelopeBytes = 4 << 10

// ChunkPlan is one planned job: the prompt ids in order (item i gets ChunkCustomID(i)) and the
// bytes and tokens they add up to.
type ChunkPlan struct {
	IDs    []string
	Bytes  int64
	Tokens int64
}

// Planner cuts a stream of prompts into chunks within Caps, in input order.
type Planner struct {
	caps Caps
	cur  ChunkPlan
}

// NewPlanner returns a Planner for caps.
func NewPlanner(caps Caps) *Planner { return &Planner{caps: caps} }

// Add appends a prompt of the given encoded size and token cost (prompt + max_tokens). When it does
// not fit in the current chunk, that chunk is returned finished and the prompt starts the next. A
// prompt that cannot fit in any chunk is an error: it must go realtime.
func (p *Planner) Add(id string, size int, tokens int64) (*ChunkPlan, error) {
	c := p.caps
	if (c.MaxBytes > 0 && int64(size)+envelopeBytes > c.MaxBytes) || (c.MaxTokens > 0 && tokens > c.MaxTokens) {
		return nil, fmt.Errorf("prompt %s (%d bytes, %d tokens) exceeds a batch job's caps (%d bytes, %d tokens)",
			id, size, tokens, c.MaxBytes, c.MaxTokens)
	}
	var done *ChunkPlan
	if n := len(p.cur.IDs); n > 0 && ((c.MaxRequests > 0 && n >= c.MaxRequests) ||
		(c.MaxBytes > 0 && p.cur.Bytes+int64(size)+envelopeBytes > c.MaxBytes) ||
		(c.MaxTokens > 0 && p.cur.Tokens+tokens > c.MaxTokens)) {
		done = p.Flush()
	}
	p.cur.IDs = append(p.cur.IDs, id)
	p.cur.Bytes += int64(size)
	p.cur.Tokens += tokens
	return done, nil
}

// Flush returns the current chunk (nil when empty) and starts a new one.
func (p *Planner) Flush() *ChunkPlan {
	if len(p.cur.IDs) == 0 {
		return nil
	}
	out := p.cur
	p.cur = ChunkPlan{}
	return &out
}

// Gate holds a model's enqueued-token budget: a job takes its tokens before it is submitted and gives
// them back when it has ended, so submissions never exceed the provider's limit (no
// token_limit_exceeded). A zero limit admits everything.
type Gate struct {
	limit int64

	mu   sync.Mutex
	used int64
	wake chan struct{} // closed and replaced on every Release
}

// NewGate returns a Gate of limit tokens (0 = unlimited).
func NewGate(limit int64) *Gate { return &Gate{limit: limit, wake: make(chan struct{})} }

// Acquire waits until n more tokens fit under the limit, then takes them. n above the limit itself
// is an error (plan chunks with Caps.MaxTokens). It returns ctx's error if ctx ends first.
func (g *Gate) Acquire(ctx context.Context, n int64) error {
	if g.limit <= 0 {
		return nil
	}
	if n > g.limit {
		return fmt.Errorf("a job of %d tokens exceeds the enqueued-token limit of %d", n, g.limit)
	}
	for {
		g.mu.Lock()
		if g.used+n <= g.limit {
			g.used += n
			g.mu.Unlock()
			return nil
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Hold takes n tokens without waiting, even beyond the limit: for jobs that are already enqueued at
// the provider (found again after a restart), which the budget must count.
func (g *Gate) Hold(n int64) {
	if g.limit <= 0 {
		return
	}
	g.mu.Lock()
	g.used += n
	g.mu.Unlock()
}

// Release gives back n tokens taken by Acquire or Hold.
func (g *Gate) Release(n int64) {
	if g.limit <= 0 {
		return
	}
	g.mu.Lock()
	g.used = max(g.used-n, 0)
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

// Used returns the tokens currently taken.
func (g *Gate) Used() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used
}
