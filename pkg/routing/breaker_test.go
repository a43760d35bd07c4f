package routing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
)

// Errors as adapters return them.
var (
	errServer     = &provider.APIError{Provider: "p", Model: "m", StatusCode: 500, Type: "server_error", Message: "boom"}
	errOverloaded = &provider.APIError{Provider: "p", Model: "m", StatusCode: 529, Type: "overloaded_error", Message: "Overloaded"}
	errReset      = &provider.APIError{Provider: "p", Model: "m", ConnBroken: true, Err: errors.New("connection reset by peer")}
	errMalformed  = &provider.APIError{Provider: "p", Model: "m", StatusCode: 200, Malformed: true, Err: errors.New("bad json")}
	errTimeout    = fmt.Errorf("attempt: %w", context.DeadlineExceeded)

	errRateLimit  = &provider.APIError{Provider: "p", Model: "m", StatusCode: 429, Type: "rate_limit_error", Message: "slow down"}
	errCanceled   = fmt.Errorf("attempt: %w", context.Canceled)
	errBadRequest = &provider.APIError{Provider: "p", Model: "m", StatusCode: 400, Type: "invalid_request_error", Message: "bad temperature"}
	errContext    = &provider.APIError{Provider: "p", Model: "m", StatusCode: 400, Type: "invalid_request_error", Message: "prompt is too long: 208310 tokens > 200000 maximum"}
	errAuth       = &provider.APIError{Provider: "p", Model: "m", StatusCode: 401, Type: "authentication_error", Message: "invalid x-api-key"}
	errQuota      = &provider.APIError{Provider: "p", Model: "m", StatusCode: 429, Type: "insufficient_quota", Code: "insufficient_quota"}

	laneFailures = []error{errServer, errOverloaded, errReset, errMalformed, errTimeout}
	neutral      = []error{errRateLimit, errCanceled, errBadRequest, errContext, errAuth, errQuota}
)

func cfg(threshold int, openFor time.Duration) config.Breaker {
	return config.Breaker{FailureThreshold: threshold, OpenFor: config.Duration(openFor)}
}

// attempt runs one request through b with outcome err and fails the test if b refuses it.
func attempt(t *testing.T, b *Breaker, err error) {
	t.Helper()
	done, ok := b.Allow()
	if !ok {
		t.Fatalf("Allow refused in state %v", b.State())
	}
	done(err)
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State = %v, want %v", got, want)
	}
}

func TestBreakerOpensAfterThreshold(t *testing.T) {
	for _, lf := range laneFailures {
		t.Run(lf.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBreaker("openai/gpt-4o-mini", cfg(3, 10*time.Second), nil)
				attempt(t, b, lf)
				attempt(t, b, lf)
				wantState(t, b, StateClosed)
				if !b.OpenUntil().IsZero() {
					t.Fatalf("closed breaker OpenUntil = %v, want zero", b.OpenUntil())
				}
				time.Sleep(time.Second)
				opened := time.Now()
				attempt(t, b, lf)
				wantState(t, b, StateOpen)
				if done, ok := b.Allow(); ok || done != nil {
					t.Fatal("open breaker admitted a request")
				}
				if got, want := b.OpenUntil(), opened.Add(10*time.Second+time.Nanosecond); !got.Equal(want) {
					t.Fatalf("OpenUntil = %v, want %v", got, want)
				}
			})
		})
	}
}

func TestBreakerNeutralErrorsNeverTrip(t *testing.T) {
	for _, e := range neutral {
		t.Run(e.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBreaker("lane", cfg(2, time.Second), nil)
				for range 50 {
					attempt(t, b, e)
				}
				wantState(t, b, StateClosed)
				// Neutral outcomes neither trip nor reset the run of failures: F, N, F opens at 2.
				attempt(t, b, errServer)
				attempt(t, b, e)
				wantState(t, b, StateClosed)
				attempt(t, b, errServer)
				wantState(t, b, StateOpen)
			})
		})
	}
}

func TestBreakerSuccessResetsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("lane", cfg(3, time.Second), nil)
		for range 20 {
			attempt(t, b, errServer)
			attempt(t, b, errServer)
			attempt(t, b, nil)
		}
		wantState(t, b, StateClosed)
	})
}

func TestBreakerHalfOpenTransitions(t *testing.T) {
	const openFor = 30 * time.Second
	open := func(t *testing.T) *Breaker {
		b := NewBreaker("lane", cfg(1, openFor), nil)
		attempt(t, b, errServer)
		wantState(t, b, StateOpen)
		return b
	}
	t.Run("still open at exactly OpenFor, half-open at OpenUntil", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t)
			until := b.OpenUntil()
			time.Sleep(openFor)
			wantState(t, b, StateOpen)
			if _, ok := b.Allow(); ok {
				t.Fatal("admitted before OpenUntil")
			}
			time.Sleep(time.Until(until))
			wantState(t, b, StateHalfOpen)
			if !b.OpenUntil().IsZero() {
				t.Fatalf("half-open OpenUntil = %v, want zero", b.OpenUntil())
			}
		})
	})
	t.Run("one trial at a time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t)
			time.Sleep(time.Until(b.OpenUntil()))
			done, ok := b.Allow()
			if !ok {
				t.Fatal("half-open refused the trial")
			}
			if _, ok := b.Allow(); ok {
				t.Fatal("half-open admitted a second request while the trial is in flight")
			}
			wantState(t, b, StateHalfOpen)
			done(nil)
			wantState(t, b, StateClosed)
		})
	})
	t.Run("trial success closes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t)
			time.Sleep(time.Until(b.OpenUntil()))
			attempt(t, b, nil)
			wantState(t, b, StateClosed)
			for range 10 {
				attempt(t, b, nil)
			}
			attempt(t, b, errServer) // threshold 1: a fresh run of failures opens it again
			wantState(t, b, StateOpen)
		})
	})
	t.Run("trial failure reopens for a full OpenFor", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t)
			time.Sleep(time.Until(b.OpenUntil()) + 5*time.Second)
			reopened := time.Now()
			attempt(t, b, errOverloaded)
			wantState(t, b, StateOpen)
			if got, want := b.OpenUntil(), reopened.Add(openFor+time.Nanosecond); !got.Equal(want) {
				t.Fatalf("OpenUntil = %v, want %v", got, want)
			}
		})
	})
	t.Run("neutral trial outcome frees the slot", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t)
			time.Sleep(time.Until(b.OpenUntil()))
			for _, e := range neutral {
				attempt(t, b, e)
				wantState(t, b, StateHalfOpen)
			}
			attempt(t, b, nil)
			wantState(t, b, StateClosed)
		})
	})
}

func TestBreakerDoneIdempotentAndStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("lane", cfg(2, time.Second), nil)
		done, _ := b.Allow()
		done(errServer)
		done(errServer) // ignored
		wantState(t, b, StateClosed)

		// A request admitted while closed reports after the breaker has opened and half-opened:
		// its outcome belongs to an old generation and must not close the breaker.
		stale, _ := b.Allow()
		attempt(t, b, errServer)
		wantState(t, b, StateOpen)
		time.Sleep(time.Until(b.OpenUntil()))
		trial, ok := b.Allow()
		if !ok {
			t.Fatal("no trial")
		}
		stale(nil)
		wantState(t, b, StateHalfOpen)
		trial(errServer)
		wantState(t, b, StateOpen)
	})
}

func TestBreakerDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("lane", config.Breaker{}, nil)
		if b.Name() != "lane" {
			t.Errorf("Name = %q", b.Name())
		}
		for range DefaultFailureThreshold - 1 {
			attempt(t, b, errServer)
		}
		wantState(t, b, StateClosed)
		start := time.Now()
		attempt(t, b, errServer)
		wantState(t, b, StateOpen)
		if got := b.OpenUntil().Sub(start); got != DefaultOpenFor+time.Nanosecond {
			t.Errorf("default open period %v, want %v", got, DefaultOpenFor)
		}
	})
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateClosed: "closed", StateHalfOpen: "half-open", StateOpen: "open", State(9): "unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want)
		}
	}
}

// breakerModel is the documented state machine, written independently of gobreaker.
type breakerModel struct {
	threshold int
	openFor   time.Duration
	state     State
	failures  int
	openedAt  time.Time
}

func (m *breakerModel) current(now time.Time) State {
	if m.state == StateOpen && now.After(m.openedAt.Add(m.openFor)) {
		m.state = StateHalfOpen
	}
	return m.state
}

// outcome applies one admitted request's result; kind is 's' success, 'f' lane failure, 'n' neutral.
func (m *breakerModel) outcome(kind byte, now time.Time) {
	switch {
	case kind == 'n':
	case kind == 's':
		m.state, m.failures = StateClosed, 0
	case m.state == StateHalfOpen:
		m.state, m.openedAt = StateOpen, now
	default:
		m.failures++
		if m.failures >= m.threshold {
			m.state, m.openedAt, m.failures = StateOpen, now, 0
		}
	}
}

// TestBreakerMatchesModel drives random outcome sequences with random pauses through a Breaker and the
// model, comparing State, admission and OpenUntil after every step.
func TestBreakerMatchesModel(t *testing.T) {
	for seed := range uint64(40) {
		synctest.Test(t, func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			threshold := 1 + r.IntN(6)
			openFor := time.Duration(1+r.IntN(60)) * time.Second
			b := NewBreaker("lane", cfg(threshold, openFor), nil)
			m := &breakerModel{threshold: threshold, openFor: openFor}
			for step := range 400 {
				switch r.IntN(4) {
				case 0:
					time.Sleep(time.Duration(r.Int64N(int64(openFor * 2))))
				case 1:
					if r.IntN(3) == 0 && m.current(time.Now()) == StateOpen {
						time.Sleep(time.Until(b.OpenUntil())) // the dispatcher's wait
					}
				default:
					now := time.Now()
					want := m.current(now)
					done, ok := b.Allow()
					if ok != (want != StateOpen) {
						t.Fatalf("seed %d step %d: Allow ok=%v in model state %v", seed, step, ok, want)
					}
					if !ok {
						break
					}
					kind := "sfn"[r.IntN(3)]
					var err error
					switch kind {
					case 'f':
						err = laneFailures[r.IntN(len(laneFailures))]
					case 'n':
						err = neutral[r.IntN(len(neutral))]
					}
					done(err)
					m.outcome(kind, now)
				}
				now := time.Now()
				want := m.current(now)
				if got := b.State(); got != want {
					t.Fatalf("seed %d step %d: State = %v, model %v", seed, step, got, want)
				}
				wantUntil := time.Time{}
				if want == StateOpen {
					wantUntil = m.openedAt.Add(openFor + time.Nanosecond)
				}
				if got := b.OpenUntil(); !got.Equal(wantUntil) {
					t.Fatalf("seed %d step %d: OpenUntil = %v, model %v", seed, step, got, wantUntil)
				}
			}
		})
	}
}

// TestBreakerConcurrent hammers one breaker from many goroutines (run with -race), then checks that
// when a half-open breaker is raced by many callers exactly one trial is admitted.
func TestBreakerConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("lane", cfg(3, 100*time.Millisecond), nil)
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 7))
				for range 300 {
					done, ok := b.Allow()
					if !ok {
						if until := b.OpenUntil(); !until.IsZero() {
							time.Sleep(time.Until(until))
						} else {
							time.Sleep(time.Millisecond)
						}
						continue
					}
					time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond)
					if r.IntN(2) == 0 {
						done(errServer)
					} else {
						done(nil)
					}
				}
			})
		}
		wg.Wait()

		for b.State() != StateOpen { // closed or half-open: both admit
			attempt(t, b, errServer)
		}
		time.Sleep(time.Until(b.OpenUntil()))
		var mu sync.Mutex
		var admitted []func(error)
		for range 32 {
			wg.Go(func() {
				if done, ok := b.Allow(); ok {
					mu.Lock()
					admitted = append(admitted, done)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(admitted) != 1 {
			t.Fatalf("half-open admitted %d concurrent trials, want 1", len(admitted))
		}
		admitted[0](nil)
		wantState(t, b, StateClosed)
	})
}

// TestBreakerStreak: opens and the start of the failure run accumulate until a success.
func TestBreakerStreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("lane", cfg(2, 10*time.Second), nil)
		if n, since := b.Streak(); n != 0 || !since.IsZero() {
			t.Fatalf("new breaker streak %d since %v", n, since)
		}
		start := time.Now()
		attempt(t, b, errServer)
		time.Sleep(time.Second)
		attempt(t, b, errServer) // opens
		for range 2 {            // two failed trials: two more opens
			time.Sleep(time.Until(b.OpenUntil()))
			attempt(t, b, errServer)
		}
		if n, since := b.Streak(); n != 3 || !since.Equal(start) {
			t.Fatalf("streak %d since +%v, want 3 opens since the first failure", n, since.Sub(start))
		}
		time.Sleep(time.Until(b.OpenUntil()))
		attempt(t, b, nil)
		if n, since := b.Streak(); n != 0 || !since.IsZero() {
			t.Fatalf("after a success: streak %d since %v", n, since)
		}
	})
}
