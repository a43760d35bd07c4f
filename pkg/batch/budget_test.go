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

// A request without max_tokens whose maximum output does not fit gets as many output tokens as
// fit, never fewer than its floor; below the floor it waits for those in flight, and is refused
// once even the floor cannot fit beside what is spent. (Amounts are exact in binary.)
func TestBudgetReserveUpToFitsTheOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := budget{limit: 1.0, prior: 0.25}                        // an earlier run spent a quarter
		p := price{base: 0.125, unit: 1.0 / 1024, lo: 64, hi: 4096} // $4.125 at most
		n, est, err := b.reserveUpTo(context.Background(), p)
		if err != nil || n != 640 || est != 0.75 {
			t.Fatalf("got %d tokens for $%v (%v); want the 640 that fit the $0.75 left", n, est, err)
		}
		got := make(chan int, 1)
		go func() {
			n, _, _ := b.reserveUpTo(context.Background(), p)
			got <- n
		}()
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("a second reservation got %d tokens while the whole cap was reserved", <-got)
		}
		b.settle(est, 0.125+0.125) // 128 tokens written: $0.5 spent in all, $0.5 left
		if n := <-got; n != 384 {
			t.Fatalf("after settling, %d tokens; want the 384 that fit $0.5", n)
		}
		b.settle(0.5, 0.5)
		if _, _, err := b.reserveUpTo(context.Background(), p); !errors.Is(err, errBudget) {
			t.Fatalf("with the cap spent: %v, want errBudget", err)
		}
	})
}
