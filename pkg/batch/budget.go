package batch

import (
	"context"
	"errors"
	"sync"
)

// budget is the --max-cost hard cap. A request reserves its estimated worst-case cost before it is
// sent and settles the actual cost after, so concurrent requests can never overshoot the cap.
type budget struct {
	mu       sync.Mutex
	limit    float64 // USD; 0 = no cap
	spent    float64 // settled
	reserved float64 // estimates of requests in flight
	holders  int     // reservations not yet settled
	// settled is closed (and replaced) by every settle, waking reservations that wait for room.
	settled chan struct{}
	// shared, when set, keeps the cap for all the job's processes; spent still sums this process's.
	shared SharedBudget
}

// reserve claims est USD for one attempt. While requests in flight hold reservations that may yet
// settle for less, it waits for them rather than refuse: the cap is reached only when est does not
// fit beside what is already spent. It returns errBudget then, or ctx's error if ctx ends first.
func (b *budget) reserve(ctx context.Context, est float64) error {
	if b.limit <= 0 {
		return nil
	}
	if b.shared != nil {
		err := b.shared.Reserve(ctx, est)
		if errors.Is(err, ErrBudgetReached) {
			return errBudget
		}
		return err
	}
	for {
		b.mu.Lock()
		if b.spent+est > b.limit {
			b.mu.Unlock()
			return errBudget
		}
		if b.holders == 0 || b.spent+b.reserved+est <= b.limit {
			b.reserved += est
			b.holders++
			b.mu.Unlock()
			return nil
		}
		if b.settled == nil {
			b.settled = make(chan struct{})
		}
		wait := b.settled
		b.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// settle replaces a reservation of est by the actual cost.
func (b *budget) settle(est, actual float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spent += actual
	if b.limit <= 0 {
		return
	}
	if b.shared != nil {
		b.shared.Settle(est, actual)
		return
	}
	b.reserved -= est
	if b.holders--; b.holders == 0 {
		b.reserved = 0 // no floating-point residue when nothing is in flight
	}
	if b.settled != nil {
		close(b.settled)
		b.settled = nil
	}
}

// total returns the settled spend.
func (b *budget) total() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent
}
