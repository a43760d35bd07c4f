package batch

import "sync"

// budget is the --max-cost hard cap. A request reserves its estimated worst-case cost before it is
// sent and settles the actual cost after, so concurrent requests can never overshoot the cap.
type budget struct {
	mu       sync.Mutex
	limit    float64 // USD; 0 = no cap
	spent    float64 // settled
	reserved float64 // estimates of requests in flight
}

// reserve claims est USD for one attempt; false when the cap would be exceeded.
func (b *budget) reserve(est float64) bool {
	if b.limit <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.spent+b.reserved+est > b.limit {
		return false
	}
	b.reserved += est
	return true
}

// settle replaces a reservation of est by the actual cost.
func (b *budget) settle(est, actual float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit > 0 {
		b.reserved -= est
	}
	b.spent += actual
}

// total returns the settled spend.
func (b *budget) total() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent
}
