package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/semaphore"
)

// MaxErrorBody caps how much of an error body is read and kept: the rest is never read.
const MaxErrorBody = 8 << 10

// MaxResponseBody caps how much of a success body is read; a longer body is an invalid_response
// ("response larger than 32 MiB").
const MaxResponseBody = 32 << 20

// DefaultBudget is the memory NewBudget(0) shares among the large success bodies in flight: two
// bodies of unknown length (each granted MaxResponseBody+1), or many smaller ones.
const DefaultBudget = 2 * (MaxResponseBody + 1)

// SmallBody is how much of each success body is read without a grant from the Budget. Nearly every
// completion fits; the memory it takes is bounded by the number of requests in flight.
const SmallBody = 1 << 20

// Budget bounds the memory that success bodies take while they are read and decoded, across every
// request in flight that shares it (one per run: pass the same Budget to every adapter). The first
// SmallBody bytes of a body are read freely; a body that is (or declares itself) larger first takes a
// grant of its declared length, or of MaxResponseBody when the length is unknown, and keeps it until
// it has been decoded. A request waits (honouring its context) while the grants of others exhaust
// the budget. A holder never waits for more, so waiting can never deadlock. The buffers of bodies of
// unknown length are reused across requests, so a stream of huge bodies does not leave the garbage
// collector a gigabyte to catch up with. A Budget is safe for concurrent use.
type Budget struct {
	sem   *semaphore.Weighted
	total int64
	bufs  sync.Pool // *[]byte of capacity MaxResponseBody+1
}

// NewBudget returns a Budget of total bytes: DefaultBudget when total ≤ 0, and never less than
// MaxResponseBody+1 (so one body at the cap always fits).
func NewBudget(total int64) *Budget {
	if total <= 0 {
		total = DefaultBudget
	}
	total = max(total, MaxResponseBody+1)
	return &Budget{sem: semaphore.NewWeighted(total), total: total}
}

// Total returns the budget's size in bytes.
func (b *Budget) Total() int64 { return b.total }

// TooLargeError is the error of a success body longer than the limit per body (MaxResponseBody).
type TooLargeError struct {
	Limit int64 // bytes
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("response larger than %d MiB (the limit per response body)", e.Limit>>20)
}

// tooLarge is the error of a body past limit.
func tooLarge(limit int64) error { return &TooLargeError{Limit: limit} }

// lease is what a body read holds from a Budget: a grant of held bytes and, for a body of unknown
// length past SmallBody, the reusable buffer it was read into. release returns both (idempotent);
// the body must not be used after it.
type lease struct {
	b    *Budget
	held int64
	buf  *[]byte
}

func (l *lease) release() {
	if l == nil {
		return
	}
	if l.buf != nil {
		l.b.bufs.Put(l.buf)
		l.buf = nil
	}
	if l.held > 0 {
		l.b.sem.Release(l.held)
		l.held = 0
	}
}

// bigBuffer returns a reused (or new) empty buffer of capacity MaxResponseBody+1.
func (b *Budget) bigBuffer() *[]byte {
	if p, ok := b.bufs.Get().(*[]byte); ok {
		*p = (*p)[:0]
		return p
	}
	buf := make([]byte, 0, MaxResponseBody+1)
	return &buf
}

// read reads a success body r of declared length n (-1 = unknown) up to limit bytes, taking a grant
// before it buffers more than SmallBody. It returns the body and the lease to release once the body
// has been decoded. A body longer than limit (declared or read) is a *TooLargeError and is not read
// past limit+1 bytes (the head read so far is returned with it); a wait for the budget that ctx ends
// returns ctx's error; a read failure is returned as is. On error nothing is held.
func (b *Budget) read(ctx context.Context, r io.Reader, n, limit int64) ([]byte, *lease, error) {
	l := &lease{b: b}
	if n > limit {
		return nil, l, tooLarge(limit)
	}
	grant := func(k int64) error {
		if err := b.sem.Acquire(ctx, k); err != nil {
			return fmt.Errorf("wait for response memory budget: %w", err)
		}
		l.held = k
		return nil
	}
	var buf []byte
	switch {
	case n > SmallBody:
		if err := grant(n + 1); err != nil {
			return nil, l, err
		}
		buf = make([]byte, 0, n+1) // +1: a body longer than declared shows as a full buffer
	case n >= 0:
		buf = make([]byte, 0, n+1)
	default:
		buf = make([]byte, 0, 4<<10) // most answers are a few KiB
	}
	for {
		if len(buf) == cap(buf) {
			switch {
			case int64(len(buf)) > limit:
				head := bytes.Clone(buf[:min(len(buf), MaxErrorBody)]) // for the error's Body; buf goes back to the pool
				l.release()
				return head, l, tooLarge(limit)
			case n >= 0:
				l.release()
				return nil, l, fmt.Errorf("response body longer than its Content-Length %d", n)
			case l.held == 0 && 2*cap(buf) > SmallBody:
				// Growing past SmallBody: take a grant for the whole cap at once (never a second
				// grant, so a holder never waits) and read into one buffer of that size.
				if err := grant(limit + 1); err != nil {
					return nil, l, err
				}
				if limit == MaxResponseBody {
					l.buf = b.bigBuffer()
					buf = append(*l.buf, buf...)
					*l.buf = buf
				} else {
					buf = append(make([]byte, 0, limit+1), buf...)
				}
			case l.held == 0:
				buf = append(make([]byte, 0, 2*cap(buf)), buf...)
			}
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if errors.Is(err, io.EOF) {
			return buf, l, nil
		}
		if err != nil {
			l.release()
			return nil, l, err
		}
	}
}
