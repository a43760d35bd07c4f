package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
	"github.com/llmbatch/llmbatch/pkg/retry"
	"github.com/llmbatch/llmbatch/pkg/routing"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// countingStore is the in-process LimitStore, counting the tickets its limiters gave out and not
// yet finished.
type countingStore struct {
	inner LimitStore
	mu    sync.Mutex
	open  int
}

func (s *countingStore) Limiter(name string, l ratelimit.Limits) Limiter {
	return &countingLimiter{Limiter: s.inner.Limiter(name, l), s: s}
}

func (s *countingStore) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

type countingLimiter struct {
	Limiter
	s *countingStore
}

func (l *countingLimiter) Wait(ctx context.Context, n int) (Ticket, error) {
	t, err := l.Limiter.Wait(ctx, n)
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.open++
	l.s.mu.Unlock()
	return &countingTicket{Ticket: t, s: l.s}, nil
}

type countingTicket struct {
	Ticket
	s    *countingStore
	once sync.Once
}

func (t *countingTicket) done() {
	t.once.Do(func() {
		t.s.mu.Lock()
		t.s.open--
		t.s.mu.Unlock()
	})
}
func (t *countingTicket) Settle(n int)                       { t.Ticket.Settle(n); t.done() }
func (t *countingTicket) RateLimited(rl provider.RateLimits) { t.Ticket.RateLimited(rl); t.done() }
func (t *countingTicket) Cancel()                            { t.Ticket.Cancel(); t.done() }

// admitRig is an engine with one lane on a provider with its own slots, a budget and a breaker.
type admitRig struct {
	e     *engine
	l     *target
	store *countingStore
}

func newAdmitRig(t *testing.T, conc, provSlots int, maxCost float64, lim ratelimit.Limits, br config.Breaker) *admitRig {
	t.Helper()
	store := &countingStore{inner: localLimits{now: time.Now}}
	o := Options{Concurrency: conc, MaxCost: maxCost, Now: time.Now, Logger: slog.New(slog.DiscardHandler),
		Rand: rand.Float64}
	p := &providerState{name: "p", slots: make(chan struct{}, provSlots)}
	l := &target{sel: &selector.Lane{Provider: "p", Name: "m"}, cfg: &config.Model{Name: "m"}, prov: p,
		limits: store.Limiter("p/m", lim), breaker: routing.NewBreaker("p/m", br, time.Now),
		health: routing.NewHealth(routing.HealthConfig{})}
	e := newEngine(o, []*target{l})
	e.halted, e.halt = context.WithCancelCause(t.Context())
	e.wire = t.Context()
	return &admitRig{e: e, l: l, store: store}
}

// checkNothingHeld fails when any resource is still held: tickets, budget, slots or breaker permits.
func (r *admitRig) checkNothingHeld(t *testing.T) {
	t.Helper()
	if n := r.store.outstanding(); n != 0 {
		t.Errorf("%d rate-limit tickets not finished", n)
	}
	r.e.budget.mu.Lock()
	holders, reserved := r.e.budget.holders, r.e.budget.reserved
	r.e.budget.mu.Unlock()
	if holders != 0 || reserved != 0 {
		t.Errorf("budget still holds %d reservations of $%g", holders, reserved)
	}
	if n, m := len(r.e.slots), len(r.l.prov.slots); n != 0 || m != 0 {
		t.Errorf("%d global and %d provider slots still taken", n, m)
	}
	if n := r.l.inFlight.Load(); n != 0 {
		t.Errorf("lane in flight = %d", n)
	}
	if n := r.l.breaker.InFlight(); n != 0 {
		t.Errorf("%d breaker permits not reported", n)
	}
}

var (
	errServer500 = &provider.APIError{StatusCode: 500, Message: "boom"}
	err429       = &provider.APIError{StatusCode: 429, Message: "slow down", Limits: provider.RateLimits{RetryAfter: time.Second}}
)

// TestAdmissionNothingLeaks admits and finishes 10,000 prompts with random outcomes, many held at
// once and finished in random order, and counts what is still held at the end: nothing.
func TestAdmissionNothingLeaks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newAdmitRig(t, 8, 4, 1e6, ratelimit.Limits{},
			config.Breaker{FailureThreshold: 3, OpenFor: config.Duration(10 * time.Second)})
		rng := rand.New(rand.NewPCG(1, 2))
		var held []*admission
		var spent float64
		counts := map[refusal]int{}
		finishOne := func() {
			i := rng.IntN(len(held))
			a := held[i]
			held = append(held[:i], held[i+1:]...)
			var s settlement
			switch rng.IntN(5) {
			case 0, 1:
				s = settlement{tokens: 10 + rng.IntN(100), cost: 0.001}
				spent += s.cost
			case 2:
				s = settlement{err: errServer500}
			case 3:
				s = settlement{err: err429, rateLimited: true, limits: err429.Limits}
			case 4:
				s = settlement{err: context.Canceled}
			}
			a.finish(s)
			a.finish(s) // a second finish is a no-op
		}
		for range 10000 {
			// Never ask while every provider slot is taken: admit would wait for one.
			if len(held) == cap(r.l.prov.slots) || (len(held) > 0 && rng.IntN(2) == 0) {
				finishOne()
				continue
			}
			a, why := r.e.admit(r.e.halted, r.l, 50, 0.002)
			counts[why]++
			switch why {
			case admitted:
				held = append(held, a)
			case rMoved, rBusy: // breaker open, or its trial in flight: time passes
				if len(held) > 0 {
					finishOne()
				} else {
					time.Sleep(time.Second)
				}
			default:
				t.Fatalf("refusal %d with no limit set", why)
			}
		}
		for len(held) > 0 {
			finishOne()
		}
		r.checkNothingHeld(t)
		if got := r.e.budget.total(); got < spent-1e-9 || got > spent+1e-9 {
			t.Errorf("budget spent $%g, settlements billed $%g", got, spent)
		}
		if counts[admitted] < 1000 || counts[rMoved]+counts[rBusy] == 0 {
			t.Errorf("outcomes %v: want many admissions and some breaker refusals", counts)
		}
	})
}

// TestAdmissionRefusals refuses at each step in turn — ticket, budget, slots, breaker — and checks
// what admit gave back.
func TestAdmissionRefusals(t *testing.T) {
	br := config.Breaker{FailureThreshold: 1, OpenFor: config.Duration(time.Minute), Probes: 1}
	t.Run("ticket: daily quota", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newAdmitRig(t, 4, 4, 1, ratelimit.Limits{RPD: 1}, br)
			a, why := r.e.admit(r.e.halted, r.l, 10, 0.01)
			if why != admitted {
				t.Fatalf("first admission refused: %d", why)
			}
			a.finish(settlement{tokens: 10, cost: 0.01})
			if _, why := r.e.admit(r.e.halted, r.l, 10, 0.01); why != rQuota || !r.l.exhausted.Load() {
				t.Fatalf("refusal %d, exhausted %v; want quota", why, r.l.exhausted.Load())
			}
			r.checkNothingHeld(t)
		})
	})
	t.Run("ticket: too large", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newAdmitRig(t, 4, 4, 1, ratelimit.Limits{TPM: 100}, br)
			if _, why := r.e.admit(r.e.halted, r.l, 1000, 0.01); why != rTooLarge {
				t.Fatalf("refusal %d, want too large", why)
			}
			r.checkNothingHeld(t)
		})
	})
	t.Run("budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newAdmitRig(t, 4, 4, 0.015, ratelimit.Limits{}, br)
			a, _ := r.e.admit(r.e.halted, r.l, 10, 0.01)
			a.finish(settlement{tokens: 10, cost: 0.01})
			if _, why := r.e.admit(r.e.halted, r.l, 10, 0.01); why != rStopped {
				t.Fatalf("refusal %d; want the prompt left by the budget", why)
			}
			if n, worst, _ := r.e.leftover.get(); n != 1 || worst != 0.01 {
				t.Errorf("%d prompts left for $%v; want 1 for $0.01", n, worst)
			}
			if r.e.halted.Err() != nil {
				t.Errorf("the run halted (%v): a prompt that does not fit must not stop the others", context.Cause(r.e.halted))
			}
			r.checkNothingHeld(t)
		})
	})
	t.Run("slots", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newAdmitRig(t, 4, 1, 1, ratelimit.Limits{}, br)
			a, _ := r.e.admit(r.e.halted, r.l, 10, 0.01)
			got := make(chan refusal)
			go func() {
				_, why := r.e.admit(r.e.halted, r.l, 10, 0.01)
				got <- why
			}()
			synctest.Wait() // the second admission waits for the provider's one slot
			r.e.halt(errStopped)
			if why := <-got; why != rStopped {
				t.Fatalf("refusal %d, want stopped while waiting for a slot", why)
			}
			a.finish(settlement{err: context.Canceled})
			r.checkNothingHeld(t)
		})
	})
	t.Run("breaker", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newAdmitRig(t, 4, 4, 1, ratelimit.Limits{}, br)
			a, _ := r.e.admit(r.e.halted, r.l, 10, 0.01)
			a.finish(settlement{err: errServer500}) // threshold 1: opens
			if _, why := r.e.admit(r.e.halted, r.l, 10, 0.01); why != rMoved {
				t.Fatalf("refusal %d, want moved (breaker open)", why)
			}
			time.Sleep(time.Until(r.l.breaker.OpenUntil()))
			trial, why := r.e.admit(r.e.halted, r.l, 10, 0.01)
			if why != admitted {
				t.Fatalf("half-open trial refused: %d", why)
			}
			if _, why := r.e.admit(r.e.halted, r.l, 10, 0.01); why != rBusy {
				t.Fatalf("refusal %d, want busy (trial in flight)", why)
			}
			trial.finish(settlement{tokens: 5, cost: 0.001})
			r.checkNothingHeld(t)
			if s := r.l.breaker.State(); s != routing.StateClosed {
				t.Errorf("breaker %v after a good trial", s)
			}
		})
	})
	t.Run("provider disabled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newAdmitRig(t, 4, 4, 1, ratelimit.Limits{}, br)
			r.l.prov.disable(retryClassAuth)
			if _, why := r.e.admit(r.e.halted, r.l, 10, 0.01); why != rMoved {
				t.Fatalf("refusal %d, want moved", why)
			}
			r.checkNothingHeld(t)
		})
	})
}

var retryClassAuth = retry.Class{Type: retry.TypeAuth, Message: "bad key"}

// countingDispatcher is the realtime Dispatcher, counting what it sent.
type countingDispatcher struct {
	Dispatcher
	mu   *sync.Mutex
	sent *int
}

func (d countingDispatcher) Send(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	d.mu.Lock()
	*d.sent++
	d.mu.Unlock()
	return d.Dispatcher.Send(ctx, req)
}

// TestRunThroughTheSeams runs a whole batch with 500s and 429s through a LimitStore and a
// Dispatcher other than the defaults: every ticket is finished at the end, and the dispatcher sent
// exactly the attempts the result lines report.
func TestRunThroughTheSeams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, "providers.yaml")
		os.WriteFile(cfgPath, []byte(`
defaults: {concurrency: 8, retry: {max_attempts: 10, base_delay: 1s, max_delay: 4s}, breaker: {failure_threshold: 50}}
providers:
  - name: p
    type: sim
    models:
      - {name: m, category: small, rpm: 600, input_per_mtok: 1, output_per_mtok: 1}
    sim: {latency: 50ms, seed: 2, faults: {server_error: 0.2}, limits: {m: {rpm: 30, hide_headers: true}}}
`), 0o644)
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		var in strings.Builder
		for i := range 40 {
			fmt.Fprintf(&in, `{"id":"q%d","prompt":"question %d","max_tokens":20}`+"\n", i, i)
		}
		input := filepath.Join(dir, "in.jsonl")
		os.WriteFile(input, []byte(in.String()), 0o644)
		store := &countingStore{inner: localLimits{now: time.Now}}
		var mu sync.Mutex
		sent := 0
		rep, err := Run(context.Background(), Options{Config: cfg, Input: input, Output: filepath.Join(dir, "out.jsonl"),
			Getenv: func(string) string { return "" }, Now: time.Now, Limits: store,
			Dispatch: func(_ *config.Provider, api provider.Provider) Dispatcher {
				return countingDispatcher{Dispatcher: realtime{api}, mu: &mu, sent: &sent}
			}})
		if err != nil || rep.OK != 40 {
			t.Fatalf("%+v, %v", rep, err)
		}
		if n := store.outstanding(); n != 0 {
			t.Errorf("%d tickets not finished after the run", n)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "out.jsonl"))
		attempts := 0
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var r struct{ Attempts int }
			json.Unmarshal([]byte(line), &r)
			attempts += r.Attempts
		}
		if attempts != sent || sent <= 40 {
			t.Errorf("dispatcher sent %d, result lines report %d attempts; want equal and some retries", sent, attempts)
		}
	})
}
