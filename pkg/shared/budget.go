package shared

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrBudget is returned by Budget.Reserve when the job's shared cap cannot admit the estimate.
var ErrBudget = errors.New("shared budget reached")

// budgetPoll is how often a reservation that waits for other processes' requests to settle asks again.
const budgetPoll = 100 * time.Millisecond

// Budget is a job's --max-cost cap shared by every process of the job (same --job name on the same
// Redis): each request reserves its worst-case cost before it is sent and settles the actual cost
// after, in one atomic script each, so the processes together never exceed the cap. While Redis is
// unreachable Reserve waits for it (spending blind could exceed the cap) and settlements are kept
// and sent when it is back. It is safe for concurrent use.
type Budget struct {
	st  *Store
	job string
	key string
	cap int64 // nano-USD

	flushMu sync.Mutex // one flush at a time, so no settlement is sent twice
	mu      sync.Mutex
	pending []settlement // settlements not yet recorded in Redis
	wake    chan struct{}
}

type settlement struct{ est, actual int64 }

// nano converts USD to whole nano-dollars, so sums carry no float noise.
func nano(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

// Budget returns the shared budget of job with a cap of capUSD.
func (s *Store) Budget(job string, capUSD float64) *Budget {
	return &Budget{st: s, job: job, key: budgetKey(job), cap: nano(capUSD), wake: make(chan struct{})}
}

// Reserve claims est USD for one request. While requests in flight (in any process) hold
// reservations that may settle for less, it waits for them rather than refuse; it returns an error
// wrapping ErrBudget when est does not fit beside what the job has already spent, or ctx's error.
func (b *Budget) Reserve(ctx context.Context, est float64) error {
	n := nano(est)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		status, spent, err := b.call(ctx, "reserve", n, 0)
		switch {
		case err != nil && !errors.Is(err, errLost):
			return err
		case err == nil && status == 0:
			return nil
		case err == nil && status == 1:
			return fmt.Errorf("job %q: spent $%s of $%s, next request up to $%s: %w", b.job,
				usd(spent), usd(b.cap), usd(n), ErrBudget)
		}
		// Wait (status 2, or Redis lost): for a settlement of ours, or a poll for the others'.
		b.mu.Lock()
		wake := b.wake
		b.mu.Unlock()
		t := time.NewTimer(budgetPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// Settle replaces a reservation of est USD by the actual cost.
func (b *Budget) Settle(est, actual float64) {
	b.mu.Lock()
	b.pending = append(b.pending, settlement{nano(est), nano(actual)})
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
	_ = b.flush(context.Background())
}

// Spent returns the job's settled spend across all processes.
func (b *Budget) Spent(ctx context.Context) (float64, error) {
	_, spent, err := b.call(ctx, "get", 0, 0)
	return float64(spent) / 1e9, err
}

// flush sends the settlements not yet recorded; they stay pending when Redis is unreachable.
func (b *Budget) flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.mu.Unlock()
			return nil
		}
		p := b.pending[0]
		b.mu.Unlock()
		if _, _, err := b.run(ctx, "settle", p.est, p.actual); err != nil {
			return err
		}
		b.mu.Lock()
		b.pending = b.pending[1:]
		b.mu.Unlock()
	}
}

// call flushes pending settlements, then runs op.
func (b *Budget) call(ctx context.Context, op string, est, actual int64) (status, spent int64, err error) {
	if err := b.flush(ctx); err != nil {
		return 0, 0, err
	}
	return b.run(ctx, op, est, actual)
}

func (b *Budget) run(ctx context.Context, op string, est, actual int64) (status, spent int64, err error) {
	if b.st.Down() {
		return 0, 0, errLost
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	vals, err := b.st.budget.Run(ctx, b.st.rdb, []string{b.key}, op, b.st.id, b.cap, est, actual).Int64Slice()
	if err != nil {
		if parent.Err() != nil {
			return 0, 0, parent.Err()
		}
		if connLost(err) {
			b.st.lost(err)
			return 0, 0, errLost
		}
		return 0, 0, fmt.Errorf("shared: budget of job %q: %w", b.job, err)
	}
	return vals[0], vals[1], nil
}

// usd formats nano-dollars as dollars with up to 9 decimals and no float noise.
func usd(n int64) string {
	s := fmt.Sprintf("%d.%09d", n/1e9, n%1e9)
	for s[len(s)-1] == '0' && s[len(s)-2] != '.' {
		s = s[:len(s)-1]
	}
	return s
}
