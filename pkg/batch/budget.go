package batch

import (
	"context"
	"errors"
	"sync"
)

// budget is the --max-cost hard cap of the job. A request reserves its estimated worst-case cost
// before it is sent and settles the actual cost after, so concurrent requests can never overshoot
// the cap. Spend recorded by earlier runs of the job (prior) counts against it.
type budget struct {
	mu       sync.Mutex
	limit    float64 // USD; 0 = no cap
	prior    float64 // spent by earlier runs, from the resumed output
	spent    float64 // settled in this run
	reserved float64 // estimates of requests in flight
	holders  int     // reservations not yet settled
	// settled is closed (and replaced) by every settle, waking reservations that wait for room.
	settled chan struct{}
	// shared, when set, keeps the cap for all the job's processes; spent still sums this process's.
	shared SharedBudget
}

// reserve claims est USD for one attempt: reserveUpTo with a fixed cost.
func (b *budget) reserve(ctx context.Context, est float64) error {
	_, _, err := b.reserveUpTo(ctx, price{base: est})
	return err
}

// price is what one attempt may cost: base USD (the prompt) plus unit USD per output token, for
// between lo and hi output tokens (lo = hi: the request fixes its max_tokens).
type price struct {
	base, unit float64
	lo, hi     int
}

// at is the cost with n output tokens.
func (p price) at(n int) float64 { return p.base + p.unit*float64(n) }

// reserveUpTo claims the cost of the most output tokens, up to p.hi and at least p.lo, that fit
// the cap beside what is spent (prior included) and reserved by requests in flight, and returns
// that token count and the USD reserved. While the least (p.lo) does not fit beside those in
// flight, which may yet settle for less, it waits for them rather than refuse. It refuses with
// errBudget only when p.lo does not fit beside what is already spent: settling only adds to that,
// so the request could never be sent; the caller leaves that prompt unsent and goes on with others.
// It returns ctx's error if ctx ends first.
func (b *budget) reserveUpTo(ctx context.Context, p price) (int, float64, error) {
	if b.limit <= 0 {
		return p.hi, p.at(p.hi), nil
	}
	if b.shared != nil {
		// The shared cap takes fixed amounts: the full worst case, else (never fitting) the least.
		n := p.hi
		err := b.shared.Reserve(ctx, p.at(n))
		if errors.Is(err, ErrBudgetReached) && p.lo < p.hi {
			n = p.lo
			err = b.shared.Reserve(ctx, p.at(n))
		}
		if errors.Is(err, ErrBudgetReached) {
			return 0, 0, errBudget
		}
		if err != nil {
			return 0, 0, err
		}
		return n, p.at(n), nil
	}
	for {
		b.mu.Lock()
		if b.prior+b.spent+p.at(p.lo) > b.limit {
			b.mu.Unlock()
			return 0, 0, errBudget
		}
		room := b.limit - b.prior - b.spent
		if b.holders > 0 {
			room -= b.reserved
		}
		n := p.hi
		if p.at(n) > room {
			n = p.lo - 1 // nothing fits, unless fewer tokens do
			if p.unit > 0 {
				n = max(min(int((room-p.base)/p.unit), p.hi), p.lo-1)
			}
			for n >= p.lo && p.at(n) > room { // float rounding
				n--
			}
		}
		if b.holders == 0 {
			n = max(n, p.lo) // the first check guarantees it fits
		}
		if n >= p.lo {
			est := p.at(n)
			b.reserved += est
			b.holders++
			b.mu.Unlock()
			return n, est, nil
		}
		if b.settled == nil {
			b.settled = make(chan struct{})
		}
		wait := b.settled
		b.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
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

// total returns the spend settled in this run.
func (b *budget) total() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent
}

// leftover is what the prompts the budget refused would cost at worst: how many, and the sum of
// their worst cases. The zero value is ready; it is safe for concurrent use.
type leftover struct {
	mu    sync.Mutex
	n     int
	worst float64
	least float64 // the smallest worst case
}

// add counts one prompt left unsent whose worst case is est USD.
func (l *leftover) add(est float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 || est < l.least {
		l.least = est
	}
	l.n++
	l.worst += est
}

// get returns the count, the sum of worst cases and the smallest.
func (l *leftover) get() (n int, worst, least float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.worst, l.least
}
