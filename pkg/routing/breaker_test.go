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

func TestBreakerDoneIdempotentAndStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg(2, time.Second)
		c.Window = 2 // the rate counts at once: the stale request in flight does not hold it closed
		b := NewBreaker("lane", c, nil)
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

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateClosed: "closed", StateHalfOpen: "half-open", StateOpen: "open", State(9): "unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want)
		}
	}
}

// TestBreakerConcurrent hammers one breaker from many goroutines (run with -race), then checks that
// when a half-open breaker is raced by many callers exactly Probes requests are admitted.
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
		if len(admitted) != DefaultProbes {
			t.Fatalf("half-open admitted %d concurrent probes, want %d", len(admitted), DefaultProbes)
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

func TestBreakerOpensOnFailureRate(t *testing.T) {
	for _, err := range laneFailures {
		t.Run(err.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBreaker("lane", cfg(5, 16*time.Second), nil)
				for range 4 {
					attempt(t, b, err)
				}
				wantState(t, b, StateClosed)
				start := time.Now()
				attempt(t, b, err) // five of five: a dead lane opens after the threshold
				wantState(t, b, StateOpen)
				if got := b.OpenUntil().Sub(start); got != time.Second+time.Nanosecond {
					t.Errorf("first open period %v, want OpenFor/16 = 1s", got)
				}
				if _, ok := b.Allow(); ok {
					t.Error("open breaker admitted a request")
				}
			})
		})
	}
}

// A lane that answers 75% of requests is never parked, however its failures bunch together: runs of
// 5, 8 or 12 failures after three times as many successes, and a seeded random 25%.
func TestBreakerRateNotRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, run := range []int{5, 8, 12} {
			b := NewBreaker("lane", cfg(5, 10*time.Second), nil)
			for i := range 1000 {
				var err error
				if i%(4*run) >= 3*run { // 3×run successes, then run failures
					err = errServer
				}
				attempt(t, b, err)
			}
		}
		r := rand.New(rand.NewPCG(11, 25))
		b := NewBreaker("lane", cfg(5, 10*time.Second), nil)
		for i := range 500 {
			if b.State() != StateClosed {
				t.Fatalf("random 25%%: opened after %d calls (%d failures of %d recent)", 10*i, b.failures, len(b.recent))
			}
			for range 10 { // outcomes in bunches, as answers of requests in flight arrive
				var err error
				if r.Float64() < 0.25 {
					err = errTimeout
				}
				attempt(t, b, err)
			}
		}
		for n := 0; b.State() == StateClosed; n++ { // failures rise to half the window: now it opens
			if n == 30 {
				t.Fatalf("30 failures in a row, still closed with %d failures of %d recent", b.failures, len(b.recent))
			}
			attempt(t, b, errServer)
		}
	})
}

// Half-open admits Probes requests at once: a success closes, a failure reopens for twice as long,
// up to OpenFor; ProbeSoon brings a probe forward.
func TestBreakerHalfOpenProbesAndGrowingPeriods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("lane", cfg(2, 8*time.Second), nil)
		attempt(t, b, errServer)
		attempt(t, b, errServer)
		var periods []time.Duration
		for range 6 {
			wantState(t, b, StateOpen)
			opened := time.Now()
			until := b.OpenUntil()
			periods = append(periods, until.Sub(opened)-time.Nanosecond)
			time.Sleep(until.Sub(opened) - time.Nanosecond)
			wantState(t, b, StateOpen) // still open at exactly the period's end
			time.Sleep(time.Nanosecond)
			wantState(t, b, StateHalfOpen)
			p1, ok1 := b.Allow()
			p2, ok2 := b.Allow()
			if _, ok3 := b.Allow(); !ok1 || !ok2 || ok3 {
				t.Fatalf("half-open admitted %v %v %v, want two probes", ok1, ok2, ok3)
			}
			p1(errServer) // reopens; the other probe's outcome is stale
			p2(nil)
		}
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
		if fmt.Sprint(periods) != fmt.Sprint(want) {
			t.Errorf("open periods %v, want %v", periods, want)
		}
		b.ProbeSoon(time.Second)
		if d := time.Until(b.OpenUntil()); d > time.Second+time.Nanosecond {
			t.Errorf("after ProbeSoon(1s) the next probe is in %v", d)
		}
		time.Sleep(time.Until(b.OpenUntil()))
		attempt(t, b, nil)
		wantState(t, b, StateClosed)
		if n, since := b.Streak(); n != 0 || !since.IsZero() {
			t.Errorf("streak after a success: %d since %v", n, since)
		}
		// Closed again with clean counts (the success only): two failures are not all its calls.
		attempt(t, b, errServer)
		attempt(t, b, errServer)
		wantState(t, b, StateClosed)
	})
}

// Nothing succeeded for OpenFor since the failures began: a lane with too few calls for the rate
// opens anyway.
func TestBreakerOpensWhenNothingSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("lane", cfg(5, 10*time.Second), nil)
		attempt(t, b, nil)
		attempt(t, b, errServer)
		time.Sleep(10 * time.Second)
		attempt(t, b, errRateLimit) // excluded: neither way
		wantState(t, b, StateClosed)
		attempt(t, b, errServer)
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
		if got := b.OpenUntil().Sub(start); got != DefaultOpenFor/16+time.Nanosecond {
			t.Errorf("default first open period %v, want %v", got, DefaultOpenFor/16)
		}
	})
}

// Failures come back faster than answers: the first five outcomes of a burst of 32 are failures
// (a 500 is instant, an answer takes its latency), yet the 27 requests still in flight that were
// sent with them count as calls, so the breaker stays closed. A burst where every request fails
// opens it.
func TestBreakerFastFailuresOfABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker("lane", cfg(5, 10*time.Second), nil)
		var permits []func(error)
		for range 32 {
			done, ok := b.Allow()
			if !ok {
				t.Fatal("refused")
			}
			permits = append(permits, done)
		}
		for _, done := range permits[:5] {
			done(errServer)
		}
		wantState(t, b, StateClosed)
		time.Sleep(100 * time.Millisecond)
		for _, done := range permits[5:] {
			done(nil)
		}
		wantState(t, b, StateClosed)

		dead := NewBreaker("lane", cfg(5, 10*time.Second), nil)
		permits = permits[:0]
		for range 16 {
			done, _ := dead.Allow()
			permits = append(permits, done)
		}
		for i, done := range permits {
			done(errTimeout)
			if want := i == len(permits)-1; (dead.State() == StateOpen) != want {
				t.Fatalf("after %d of 16 failures: %v", i+1, dead.State())
			}
		}
	})
}
