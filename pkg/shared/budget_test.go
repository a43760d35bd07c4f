package shared

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/shared/redistest"
)

func TestBudgetNeverExceededAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	const capUSD = 0.05
	var (
		mu    sync.Mutex
		spent int64 // nano-USD, what the three processes settled
		wg    sync.WaitGroup
	)
	for p := range 3 {
		b := open(t, srv.URL(), Options{Job: "job1"}).Budget("job1", capUSD)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(p), uint64(w)))
				for {
					est := 0.0005 + rng.Float64()*0.002
					err := b.Reserve(context.Background(), est)
					if errors.Is(err, ErrBudget) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					actual := est * rng.Float64() // a response costs at most its worst case
					b.Settle(est, actual)
					mu.Lock()
					spent += nano(actual)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	b := open(t, srv.URL(), Options{}).Budget("job1", capUSD)
	got, err := b.Spent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if nano(got) != spent {
		t.Errorf("Redis says $%s spent, the processes settled $%s", usd(nano(got)), usd(spent))
	}
	if spent > nano(capUSD) {
		t.Errorf("spent $%s over a cap of $%v", usd(spent), capUSD)
	}
	if spent < nano(capUSD)*8/10 {
		t.Errorf("spent only $%s of $%v: the cap stopped the job early", usd(spent), capUSD)
	}
	if err := b.Reserve(context.Background(), 0.003); !errors.Is(err, ErrBudget) {
		t.Errorf("a request over what is left: %v, want ErrBudget", err)
	}
}

func TestBudgetDropsReservationsOfDeadProcesses(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	dead, err := Open(ctx, srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Budget("j", 1).Reserve(ctx, 0.9); err != nil {
		t.Fatal(err)
	}
	dead.Close() // its heartbeat key goes; its reservation can never be settled

	b := open(t, srv.URL(), Options{}).Budget("j", 1)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.Reserve(ctx, 0.5); err != nil {
		t.Fatalf("reserving beside a dead process's reservation: %v", err)
	}
}

func TestUSD(t *testing.T) {
	for n, want := range map[int64]string{0: "0.0", 76600: "0.0000766", 1_500_000_000: "1.5", 2_000_000_000: "2.0"} {
		if got := usd(n); got != want {
			t.Errorf("usd(%d) = %q, want %q", n, got, want)
		}
	}
}
