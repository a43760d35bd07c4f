package batch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Concurrent reservations never let settled plus reserved spend pass the cap, whatever the
// interleaving; the end-to-end budget tests are cmd's TestBudgetCapUnderConcurrency and
// TestSafetyBudgetUnderConcurrency.
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
				if b.reserve(context.Background(), 0.01) != nil {
					return
				}
				mu.Lock()
				admitted++
				mu.Unlock()
				b.mu.Lock()
				if b.spent+b.reserved > 1.0+1e-9 {
					t.Errorf("spent %.4f + reserved %.4f above the 1.0 cap", b.spent, b.reserved)
				}
				b.mu.Unlock()
				b.settle(0.01, 0.007) // actual cost below the estimate, as usual
			}
		}()
	}
	wg.Wait()
	if got := b.total(); got > 1.0 {
		t.Fatalf("spent %.4f, above the 1.0 cap", got)
	}
	// Reservations wait for room instead of failing, so the cap is used up to less than one request.
	if got := b.total(); got < 1.0-0.01 {
		t.Fatalf("spent %.4f of 1.0 (%d requests): reservations were refused while others could still settle", got, admitted)
	}
}

// A reservation that does not fit beside those in flight waits for them to settle; it is refused
// only when it cannot fit beside what is already spent. (Amounts are exact in binary.)
func TestBudgetReserveWaitsForSettlement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := budget{limit: 1.0}
		ctx := context.Background()
		for range 4 {
			if err := b.reserve(ctx, 0.25); err != nil {
				t.Fatal(err)
			}
		}
		got := make(chan error, 1)
		go func() { got <- b.reserve(ctx, 0.25) }()
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("reserve returned %v while the whole cap was reserved", <-got)
		}
		b.settle(0.25, 0.25) // spent 0.25, reserved 0.75: still no room
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("reserve returned %v before there was room", <-got)
		}
		b.settle(0.25, 0) // an unbilled error: spent 0.25, reserved 0.5, room for one more
		if err := <-got; err != nil {
			t.Fatalf("reserve: %v", err)
		}

		// With 0.75 reserved and 0.25 spent, a waiting reservation gives up when its context ends.
		cctx, cancel := context.WithCancel(ctx)
		go func() { got <- b.reserve(cctx, 0.25) }()
		time.Sleep(time.Minute)
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Fatalf("reserve after cancel: %v", err)
		}
		for range 3 {
			b.settle(0.25, 0.25)
		}
		// 1.0 spent: nothing more fits, and reserve says so at once.
		if err := b.reserve(ctx, 0.25); !errors.Is(err, errBudget) {
			t.Fatalf("reserve with the cap spent: %v, want errBudget", err)
		}
		if b.total() != 1.0 {
			t.Fatalf("total %v", b.total())
		}
	})
}

func TestBudgetUnlimited(t *testing.T) {
	var b budget
	for range 1000 {
		if err := b.reserve(context.Background(), 1e6); err != nil {
			t.Fatalf("a budget without a limit refused a request: %v", err)
		}
		b.settle(1e6, 1)
	}
	if b.total() != 1000 {
		t.Fatalf("total %v, want 1000", b.total())
	}
}
