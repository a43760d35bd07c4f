package batch

import (
	"sync"
	"testing"
)

// Concurrent reservations never let settled plus reserved spend pass the cap, whatever the
// interleaving; the end-to-end budget test is cmd's TestBudgetCapUnderConcurrency.
func TestBudgetNeverOvershoots(t *testing.T) {
	b := budget{limit: 1.0}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if !b.reserve(0.01) {
					return
				}
				mu.Lock()
				admitted++
				mu.Unlock()
				b.settle(0.01, 0.007) // actual cost below the estimate, as usual
			}
		}()
	}
	wg.Wait()
	if got := b.total(); got > 1.0 {
		t.Fatalf("spent %.4f, above the 1.0 cap", got)
	}
	if admitted < 100 {
		t.Fatalf("only %d requests admitted: settling must release the unused part of each reservation", admitted)
	}
}

func TestBudgetUnlimited(t *testing.T) {
	var b budget
	for range 1000 {
		if !b.reserve(1e6) {
			t.Fatal("a budget without a limit refused a request")
		}
		b.settle(1e6, 1)
	}
	if b.total() != 1000 {
		t.Fatalf("total %v, want 1000", b.total())
	}
}
