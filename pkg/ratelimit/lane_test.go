package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
)

func fixed(n int) func(int) int { return func(int) int { return n } }

func TestRPMBoundNeverExceedsAndReachesCeiling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rpm = 600
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: rpm}, time.Now)
		p := &fakeProvider{rpm: rpm, hide: true}
		res := drive(t, lane, p, 32, 300*time.Millisecond, 5*time.Minute, fixed(100))

		if got, _ := maxInWindow(res.admitted, time.Minute); got > rpm {
			t.Errorf("admitted %d requests in one 60 s window, limit %d", got, rpm)
		}
		if len(res.rejected) != 0 {
			t.Errorf("%d requests answered 429, want 0", len(res.rejected))
		}
		if want := 0.97 * 5 * rpm; float64(len(res.ok)) < want {
			t.Errorf("accepted %d requests in 5 min, want >= %.0f (97%% of the ceiling)", len(res.ok), want)
		}
		// Enforcement unknown and no headers to learn it from: one second's share at a time, not a
		// minute's budget at once.
		if got, _ := maxInWindow(res.admitted, time.Second); got > 2*rpm/60+1 {
			t.Errorf("admitted %d requests in one second; pacing should allow about %d", got, rpm/60)
		}
	})
}

func TestConfiguredLimitsWithNetworkJitter(t *testing.T) {
	// Requests reach the provider 0-800 ms after admission, so its window sees them bunched
	// differently than ours; the 1 s guard must absorb that on its own (headers hidden) and together
	// with the reconciliation of remaining counts (headers shown).
	for _, hide := range []bool{true, false} {
		t.Run(map[bool]string{true: "no-headers", false: "headers"}[hide], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const rpm, tpm = 600, 300_000 // both bind: 500 tokens per request
				lane := ratelimit.New("p/m", ratelimit.Limits{RPM: rpm, TPM: tpm}, time.Now)
				p := &fakeProvider{rpm: rpm, tpm: tpm, hide: hide, netDelay: func(i int) time.Duration {
					return time.Duration(i*7919%800) * time.Millisecond // 0-800 ms, shuffled
				}}
				res := drive(t, lane, p, 64, time.Second, 5*time.Minute, fixed(500))

				if len(res.rejected) != 0 {
					t.Errorf("%d requests answered 429 with exact limits, want 0", len(res.rejected))
				}
				if want := 0.97 * 5 * rpm; float64(len(res.ok)) < want {
					t.Errorf("accepted %d requests in 5 min, want >= %.0f (97%% of the ceiling)", len(res.ok), want)
				}
				if s := lane.Snapshot(); s.Limits.RPM != rpm || s.Limits.TPM != tpm {
					t.Errorf("limits drifted to %+v", s.Limits)
				}
			})
		})
	}
}

func TestTPMBoundWithRequestsLargerThanBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const tpm = 60_000 // burst is 1,000 tokens
		lane := ratelimit.New("p/m", ratelimit.Limits{TPM: tpm}, time.Now)
		p := &fakeProvider{tpm: tpm, hide: true}
		sizes := []int{500, 1500, 2500, 900}
		res := drive(t, lane, p, 16, 2*time.Second, 5*time.Minute, func(i int) int { return sizes[i%len(sizes)] })

		if _, got := maxInWindow(res.admitted, time.Minute); got > tpm {
			t.Errorf("admitted %d tokens in one 60 s window, limit %d", got, tpm)
		}
		if len(res.rejected) != 0 {
			t.Errorf("%d requests answered 429, want 0", len(res.rejected))
		}
		_, tokens := res.between(time.Time{}, time.Now())
		if want := 0.97 * 5 * tpm; float64(tokens) < want {
			t.Errorf("accepted %d tokens in 5 min, want >= %.0f (97%% of the ceiling)", tokens, want)
		}
	})
}

func TestUnknownLimitsAreLearnedFromHeaders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rpm, tpm int
		size     int
	}{
		{"rpm", 300, 0, 100},
		{"tpm", 0, 40_000, 800}, // ceiling 50/min
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lane := ratelimit.New("p/m", ratelimit.Limits{}, time.Now)
				p := &fakeProvider{rpm: tc.rpm, tpm: tc.tpm}
				res := drive(t, lane, p, 16, 500*time.Millisecond, 5*time.Minute, fixed(tc.size))

				s := lane.Snapshot()
				if s.Limits.RPM != tc.rpm || s.Limits.TPM != tc.tpm {
					t.Errorf("learned limits %+v, want RPM %d TPM %d", s.Limits, tc.rpm, tc.tpm)
				}
				if tc.rpm > 0 && s.Source.RPM != ratelimit.SourceHeaders || tc.tpm > 0 && s.Source.TPM != ratelimit.SourceHeaders {
					t.Errorf("sources %+v, want headers", s.Source)
				}
				ceiling := 5 * ratelimit.Limits{RPM: tc.rpm, TPM: tc.tpm}.Ceiling(float64(tc.size)) * 60
				if float64(len(res.ok)) < 0.9*ceiling {
					t.Errorf("accepted %d requests, want >= 90%% of %.0f", len(res.ok), ceiling)
				}
				if r := float64(len(res.rejected)) / float64(len(res.admitted)); r >= 0.01 {
					t.Errorf("%d of %d requests answered 429 (%.1f%%), want < 1%%", len(res.rejected), len(res.admitted), 100*r)
				}
			})
		})
	}
}

func TestOverstatedConfigAdoptsHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 1000, TPM: 1_000_000}, time.Now)
		p := &fakeProvider{rpm: 400, tpm: 200_000}
		res := drive(t, lane, p, 32, 200*time.Millisecond, 5*time.Minute, fixed(400)) // both bind at 400/min... 500/min

		if got := res.rejectedAfter(time.Time{}.Add(1)); got > 3 {
			t.Errorf("%d requests answered 429; an overstated config must stop causing them after the first few", got)
		}
		s := lane.Snapshot()
		if s.Limits.RPM != 400 || s.Limits.TPM != 200_000 || s.Source.RPM != ratelimit.SourceHeaders {
			t.Errorf("limits %+v from %+v, want the advertised 400 RPM, 200000 TPM from headers", s.Limits, s.Source)
		}
		if want := 0.97 * 5 * 400; float64(len(res.ok)) < want {
			t.Errorf("accepted %d, want >= %.0f", len(res.ok), want)
		}
	})
}

func TestOverstatedConfigWithoutHeadersAdapts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 1000}, time.Now)
		p := &fakeProvider{rpm: 400, hide: true}
		res := drive(t, lane, p, 32, 200*time.Millisecond, 10*time.Minute, fixed(100))

		s := lane.Snapshot()
		if s.Source.RPM != ratelimit.SourceAdaptive || s.Limits.RPM > 1000 {
			t.Errorf("limits %+v from %+v, want an adaptive RPM", s.Limits, s.Source)
		}
		late := start.Add(2 * time.Minute)
		n, _ := res.between(late, time.Now())
		if r := float64(res.rejectedAfter(late)) / float64(n); r >= 0.01 {
			t.Errorf("after 2 min: %d 429s for %d accepted (%.1f%%), want < 1%%", res.rejectedAfter(late), n, 100*r)
		}
		if want := 0.9 * 8 * 400; float64(n) < want {
			t.Errorf("after 2 min: accepted %d in 8 min, want >= %.0f (90%%)", n, want)
		}
		t.Logf("adaptive RPM %d, 429s %d, accepted after 2 min %d of %d", s.Limits.RPM, s.RateLimited, n, 8*400)
	})
}

func TestUnknownLimitsWithoutHeadersConverge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		lane := ratelimit.New("p/m", ratelimit.Limits{}, time.Now)
		p := &fakeProvider{rpm: 300, hide: true}
		res := drive(t, lane, p, 16, 500*time.Millisecond, 10*time.Minute, fixed(100))

		s := lane.Snapshot()
		if s.Source.RPM != ratelimit.SourceAdaptive {
			t.Fatalf("source %v, want adaptive after 429s without headers", s.Source.RPM)
		}
		late := start.Add(2 * time.Minute)
		n, _ := res.between(late, time.Now())
		if want := 0.9 * 8 * 300; float64(n) < want {
			t.Errorf("after 2 min: accepted %d in 8 min, want >= %.0f (90%%)", n, want)
		}
		if r := float64(res.rejectedAfter(late)) / float64(n); r >= 0.01 {
			t.Errorf("after 2 min: %d 429s for %d accepted, want < 1%%", res.rejectedAfter(late), n)
		}
		t.Logf("adaptive RPM %d, 429s %d, accepted after 2 min %d of %d", s.Limits.RPM, s.RateLimited, n, 8*300)
	})
}

func TestUnknownLimitsDoNotThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{}, time.Now)
		start := time.Now()
		for range 10_000 {
			tk, err := lane.Wait(t.Context(), 1000)
			if err != nil {
				t.Fatal(err)
			}
			tk.Settle(1000)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("10000 admissions with unknown limits took %v, want no wait", d)
		}
		if s := lane.Snapshot(); s.MinuteRequests != 10_000 || s.MinuteTokens != 10_000_000 {
			t.Errorf("snapshot %d requests %d tokens in the last minute, want 10000 and 10000000", s.MinuteRequests, s.MinuteTokens)
		}
	})
}

func TestPauseHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 60}, time.Now)
		start := time.Now()
		first, err := lane.Wait(t.Context(), 1)
		if err != nil || !first.At().Equal(start) {
			t.Fatalf("first Wait: %v at %v, want immediate", err, first.At())
		}
		// A second request waits about a second for the next sub-window; a pause arriving meanwhile holds it.
		done := make(chan time.Time)
		go func() {
			tk, err := lane.Wait(t.Context(), 1)
			if err != nil {
				t.Error(err)
			}
			tk.Cancel()
			done <- time.Now()
		}()
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if s := lane.Snapshot(); s.Waiting != 1 {
			t.Fatalf("waiting %d, want 1", s.Waiting)
		}
		lane.Pause(10 * time.Second)
		if s := lane.Snapshot(); !s.PausedUntil.Equal(start.Add(10500 * time.Millisecond)) {
			t.Errorf("paused until %v, want start+10.5s", s.PausedUntil.Sub(start))
		}
		if got := (<-done).Sub(start); got < 10500*time.Millisecond {
			t.Errorf("waiting request admitted at +%v during a pause until +10.5s", got)
		}
		// A shorter pause does not shorten it.
		lane.PauseUntil(time.Now().Add(-time.Second))
		lane.Pause(3 * time.Second)
		before := time.Now()
		tk, err := lane.Wait(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(before); got != 3*time.Second {
			t.Errorf("Wait during a 3 s pause returned after %v", got)
		}
		tk.Settle(1)
	})
}

func TestDelayMatchesWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 120, TPM: 12_000}, time.Now)
		sizes := []int{50, 400, 3000, 10, 700, 12_000, 1}
		for i := range 40 {
			n := sizes[i%len(sizes)]
			d := lane.Delay(n)
			start := time.Now()
			tk, err := lane.Wait(t.Context(), n)
			if err != nil {
				t.Fatalf("Wait(%d): %v", n, err)
			}
			if got := time.Since(start); got != d {
				t.Fatalf("request %d of %d tokens: Delay said %v, Wait took %v", i, n, d, got)
			}
			tk.Settle(n)
		}
	})
}

func TestTokensAboveBurstAndLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{TPM: 6000}, time.Now) // burst 100
		start := time.Now()
		var at []time.Duration
		for range 3 {
			tk, err := lane.Wait(t.Context(), 3000)
			if err != nil {
				t.Fatalf("Wait(3000) with a 100-token burst: %v", err)
			}
			at = append(at, tk.At().Sub(start))
			tk.Settle(3000)
		}
		// Larger than one second's share (100): each waits for an empty sub-window, so the second
		// goes one sub-window later; the third waits for the first to leave the 60 s window.
		if at[0] != 0 || at[1] < time.Second || at[1] > 2*time.Second || at[2] < 61*time.Second {
			t.Errorf("admitted at %v, want 0, ~1s, >=61s", at)
		}
		if _, err := lane.Wait(t.Context(), 6001); !errors.Is(err, ratelimit.ErrTooLarge) {
			t.Errorf("Wait above TPM: %v, want ErrTooLarge", err)
		}
		if d := lane.Delay(6001); d != ratelimit.Never {
			t.Errorf("Delay above TPM = %v, want Never", d)
		}
	})
}

func TestDailyExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPD: 3, TPD: 1000}, time.Now)
		start := time.Now()
		for range 3 {
			tk, err := lane.Wait(t.Context(), 100)
			if err != nil {
				t.Fatal(err)
			}
			tk.Settle(100)
		}
		_, err := lane.Wait(t.Context(), 100)
		if !errors.Is(err, ratelimit.ErrDailyExhausted) {
			t.Fatalf("4th Wait with RPD 3: %v, want ErrDailyExhausted", err)
		}
		if time.Since(start) != 0 {
			t.Errorf("exhausted Wait blocked for %v, want an immediate error", time.Since(start))
		}
		if d := lane.Delay(1); d != ratelimit.Never {
			t.Errorf("Delay = %v, want Never", d)
		}
		s := lane.Snapshot()
		if !s.DayExhausted || s.DayRemainingRequests != 0 || s.DayRemainingTokens != 700 || !s.DayResetAt.Equal(start.Add(24*time.Hour)) {
			t.Errorf("snapshot %+v", s)
		}

		time.Sleep(24 * time.Hour)
		tk, err := lane.Wait(t.Context(), 900)
		if err != nil {
			t.Fatalf("after the day rolled over: %v", err)
		}
		tk.Settle(950) // under-estimate counts against the day
		if _, err := lane.Wait(t.Context(), 60); !errors.Is(err, ratelimit.ErrDailyExhausted) {
			t.Errorf("TPD 1000 after 950 tokens, Wait(60): %v, want ErrDailyExhausted", err)
		}
		if _, err := lane.Wait(t.Context(), 1001); !errors.Is(err, ratelimit.ErrTooLarge) {
			t.Errorf("Wait above TPD: %v, want ErrTooLarge", err)
		}
	})
}

func TestDailyLimitFromHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("groq/llama", ratelimit.Limits{}, time.Now)
		lane.Observe(provider.RateLimits{HasRequests: true, RequestsPerDay: true, LimitRequests: 14_400,
			RemainingRequests: 0, ResetRequests: time.Hour, HasTokens: true, LimitTokens: 6000, RemainingTokens: 6000})
		s := lane.Snapshot()
		if s.Limits.RPD != 14_400 || s.Limits.RPM != 0 || s.Limits.TPM != 6000 || s.Source.RPD != ratelimit.SourceHeaders {
			t.Errorf("limits %+v from %+v, want RPD 14400 and TPM 6000 from headers", s.Limits, s.Source)
		}
		if _, err := lane.Wait(t.Context(), 10); !errors.Is(err, ratelimit.ErrDailyExhausted) {
			t.Fatalf("Wait with 0 requests remaining today: %v, want ErrDailyExhausted", err)
		}
		time.Sleep(time.Hour)
		if _, err := lane.Wait(t.Context(), 10); err != nil {
			t.Errorf("after the advertised reset: %v", err)
		}
	})
}

func TestExhaustDay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("gemini/flash", ratelimit.Limits{}, time.Now)
		lane.ExhaustDay(time.Now().Add(5 * time.Hour))
		if _, err := lane.Wait(t.Context(), 10); !errors.Is(err, ratelimit.ErrDailyExhausted) {
			t.Fatalf("Wait: %v, want ErrDailyExhausted", err)
		}
		time.Sleep(5 * time.Hour)
		if _, err := lane.Wait(t.Context(), 10); err != nil {
			t.Errorf("after the reset: %v", err)
		}
	})
}

func TestSettleChargesUnderEstimates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{TPM: 6100, Window: time.Minute}, time.Now)
		tk, _ := lane.Wait(t.Context(), 100)
		if d := lane.Delay(6000); d != 0 {
			t.Fatalf("Delay for the 6000 tokens left in the window = %v, want 0", d)
		}
		tk.Settle(1100) // 1000 more than estimated: the window holds 1100
		if d := lane.Delay(5000); d != 0 {
			t.Errorf("Delay for 5000 more = %v, want 0 (6100 in the window)", d)
		}
		if d := lane.Delay(5001); d < 60*time.Second || d > 62*time.Second {
			t.Errorf("Delay for 5001 more = %v, want ~61s: the under-estimate counts in the window", d)
		}
		s := lane.Snapshot()
		if s.MinuteTokens != 1100 || s.DayTokens != 1100 {
			t.Errorf("snapshot tokens %d/min %d/day, want the actual 1100", s.MinuteTokens, s.DayTokens)
		}
		// An over-estimate keeps the admission count: providers charge it.
		tk2, _ := lane.Wait(t.Context(), 500)
		tk2.Settle(10)
		if s := lane.Snapshot(); s.MinuteTokens != 1600 {
			t.Errorf("minute tokens %d after an over-estimate, want 1600", s.MinuteTokens)
		}
		tk2.Settle(5000) // a second finish is a no-op
		if s := lane.Snapshot(); s.MinuteTokens != 1600 {
			t.Errorf("minute tokens %d after settling twice, want 1600", s.MinuteTokens)
		}
	})
}

func TestCancelReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 2, RPD: 10}, time.Now)
		a, _ := lane.Wait(t.Context(), 1)
		b, _ := lane.Wait(t.Context(), 1) // one second's share is 1: the next sub-window
		b.Cancel()
		if s := lane.Snapshot(); s.MinuteRequests != 1 || s.DayRequests != 1 {
			t.Errorf("after Cancel: %d/min %d/day, want 1 and 1", s.MinuteRequests, s.DayRequests)
		}
		a.Settle(1)
		// b was cancelled at its slot, so its slot is free again: c takes it at once.
		start := time.Now()
		c, _ := lane.Wait(t.Context(), 1)
		if d := time.Since(start); d != 0 {
			t.Errorf("Wait after cancelling a due slot took %v, want the freed slot at once", d)
		}
		c.Settle(1)

		// A Wait whose deadline comes before its slot fails at once (as rate.Limiter.WaitN does) and
		// releases the slot: the next caller is not queued behind it.
		before := lane.Delay(1)
		start = time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := lane.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait past its deadline: %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Wait with a deadline before its slot took %v, want an immediate error", d)
		}
		if s := lane.Snapshot(); s.Waiting != 0 || s.MinuteRequests != 2 || s.DayRequests != 2 {
			t.Errorf("after an abandoned Wait: %+v", s)
		}
		if got := lane.Delay(1); got > before {
			t.Errorf("Delay after an abandoned Wait = %v, want <= %v", got, before)
		}

		// A Wait cancelled while sleeping returns at the cancellation with its cause.
		lane.Pause(time.Hour)
		ctx2, cancel2 := context.WithCancel(t.Context())
		time.AfterFunc(5*time.Second, cancel2)
		start = time.Now()
		if _, err := lane.Wait(ctx2, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Wait: %v, want Canceled", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("cancelled Wait returned after %v, want 5s", d)
		}
		if s := lane.Snapshot(); s.Waiting != 0 || s.DayRequests != 2 {
			t.Errorf("after a cancelled Wait: %+v", s)
		}
	})
}

// A request cancelled after its slot came due (never sent: the caller lost its turn, a breaker
// opened) gives its slot back: x/time/rate cannot restore a reservation whose time has passed, so
// without the lane's refund every such request would cost the pacing two slots.
func TestCancelAfterSlotReleasesPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 60}, time.Now) // burst 1, a slot every ~1 s
		a, _ := lane.Wait(t.Context(), 1)
		a.Settle(1)
		b, _ := lane.Wait(t.Context(), 1) // returns at its slot
		before := lane.Delay(1)
		b.Cancel()
		if got := lane.Delay(1); got != 0 {
			t.Errorf("Delay after cancelling a due slot = %v (%v before), want 0: the slot is free again", got, before)
		}
		c, _ := lane.Wait(t.Context(), 1)
		c.Settle(1)
		if got := lane.Delay(1); got < 900*time.Millisecond {
			t.Errorf("Delay after the refunded slot was used = %v, want ~1s: a refund is spent once", got)
		}
	})
}

// The end-to-end scenario of a run whose config has no limits: 64 requests go out at once before
// anything is known, the provider enforces 300 RPM and says so (reset = until its oldest admission
// leaves, as pkg/sim reports it), and half of the requests lose their slot before they are sent and
// take a new one (as an engine does that re-reserves a slot gone stale). The lane must still reach
// the ceiling: a slot given back is not paid for twice.
func TestUnknownLimitsBurstThenHeadersWithRequeues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rpm, workers = 300, 64
		lane := ratelimit.New("p/m", ratelimit.Limits{}, time.Now)
		p := &fakeProvider{rpm: rpm, resetOldest: true}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		var (
			mu          sync.Mutex
			ok, limited int
			seq         int
			wg          sync.WaitGroup
		)
		for range workers {
			wg.Go(func() {
				for {
					tk, err := lane.Wait(ctx, 150)
					if err != nil {
						return
					}
					mu.Lock()
					i := seq
					seq++
					mu.Unlock()
					if i%2 == 1 {
						tk.Cancel() // lost its turn: never sent
						if tk, err = lane.Wait(ctx, 150); err != nil {
							return
						}
					}
					accepted, rl := p.arrive(time.Now(), 150)
					time.Sleep(200 * time.Millisecond)
					mu.Lock()
					if accepted {
						ok++
					} else {
						limited++
					}
					mu.Unlock()
					if accepted {
						tk.Settle(150)
						lane.Observe(rl)
					} else {
						tk.RateLimited(rl)
					}
				}
			})
		}
		wg.Wait()
		if s := lane.Snapshot(); s.Limits.RPM != rpm || s.Source.RPM != ratelimit.SourceHeaders {
			t.Errorf("limits %+v from %+v, want %d RPM from headers", s.Limits, s.Source, rpm)
		}
		if want := 0.9 * 3 * rpm; float64(ok) < want {
			t.Errorf("accepted %d in 3 min, want >= %.0f (90%% of the ceiling)", ok, want)
		}
		if limited > workers {
			t.Errorf("%d requests answered 429, want at most the opening burst of %d", limited, workers)
		}
		t.Logf("accepted %d in 3 min (%.1f%% of %d RPM), %d answered 429", ok, 100*float64(ok)/(3*rpm), rpm, limited)
	})
}

func TestRemainingBeyondOurLogSlowsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 100}, time.Now)
		for range 10 {
			tk, _ := lane.Wait(t.Context(), 1)
			tk.Settle(1)
		}
		time.Sleep(2 * time.Second)
		// Another client used the rest of the window: the provider has nothing left for 30 s.
		lane.Observe(provider.RateLimits{ObservedAt: time.Now(), HasRequests: true, LimitRequests: 100,
			RemainingRequests: 0, ResetRequests: 30 * time.Second})
		if d := lane.Delay(1); d < 29*time.Second || d > 31*time.Second {
			t.Errorf("Delay after remaining 0 beyond our log = %v, want ~30s", d)
		}
	})
}

func TestRemainingMatchingOurLogDoesNotPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 100, Window: time.Minute}, time.Now)
		p := &fakeProvider{rpm: 100}
		var last provider.RateLimits
		for range 30 {
			tk, _ := lane.Wait(t.Context(), 1)
			_, last = p.arrive(time.Now(), 1)
			tk.Settle(1)
		}
		before := lane.Delay(1)
		lane.Observe(last)
		if got := lane.Delay(1); got != before {
			t.Errorf("headers agreeing with our log changed Delay from %v to %v", before, got)
		}
	})
}

func TestRateLimitedWithoutRetryAfterBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{}, time.Now)
		// 429s the headers explain (nothing remaining) without Retry-After or reset: a backoff that
		// doubles per consecutive 429.
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			tk, err := lane.Wait(t.Context(), 1)
			if err != nil {
				t.Fatal(err)
			}
			tk.RateLimited(provider.RateLimits{ObservedAt: time.Now(), HasRequests: true, LimitRequests: 1000})
			if d := time.Until(lane.Snapshot().PausedUntil); d != want {
				t.Errorf("after 429 #%d paused for %v, want %v", i+1, d, want)
			}
			time.Sleep(lane.Delay(1))
		}
		// With Retry-After, the pause is exactly that.
		tk, _ := lane.Wait(t.Context(), 1)
		tk.RateLimited(provider.RateLimits{ObservedAt: time.Now(), HasRequests: true, LimitRequests: 1000, RetryAfter: 7 * time.Second})
		if s := lane.Snapshot(); !s.PausedUntil.Equal(time.Now().Add(7 * time.Second)) {
			t.Errorf("paused until %v, want now+7s", s.PausedUntil)
		}
	})
}

func TestUnexplainedRateLimitsDoNotThrottle(t *testing.T) {
	// 30% of the answers are 429s without headers, whatever the rate: a busy provider, not a limit.
	// The lane neither pauses nor lowers its rate; the requests are retried by their callers.
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{}, time.Now)
		for i := range 1000 {
			tk, err := lane.Wait(t.Context(), 1)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
			if i*7919%10 < 3 {
				tk.RateLimited(provider.RateLimits{ObservedAt: time.Now(), RetryAfter: time.Second})
			} else {
				tk.Settle(1)
			}
			if d := lane.Delay(1); d != 0 {
				t.Fatalf("after answer %d: Delay %v, want 0", i, d)
			}
		}
		if s := lane.Snapshot(); s.Limits.RPM != 0 || s.Source.RPM != ratelimit.SourceUnknown || s.RateLimited != 300 {
			t.Errorf("after random 429s: %+v", s)
		}
		// When 429s become most answers, a limit is being hit: the lane adapts, never below what the
		// provider accepted over the last minute, and pauses no longer than Retry-After.
		var s ratelimit.State
		for n := 0; s.Source.RPM != ratelimit.SourceAdaptive; n++ {
			if n == 40 {
				t.Fatalf("40 429s in a row, still %+v", s)
			}
			time.Sleep(10 * time.Millisecond)
			tk, _ := lane.Wait(t.Context(), 1)
			tk.RateLimited(provider.RateLimits{ObservedAt: time.Now(), RetryAfter: 2 * time.Second})
			s = lane.Snapshot()
		}
		if s.Source.RPM != ratelimit.SourceAdaptive || s.Limits.RPM < 700 {
			t.Errorf("after a run of 429s: limits %+v from %+v, want adaptive, at least the 700 accepted", s.Limits, s.Source)
		}
		if !s.PausedUntil.After(time.Now()) || s.PausedUntil.After(time.Now().Add(2*time.Second)) {
			t.Errorf("paused until %v, want within the 2 s Retry-After", time.Until(s.PausedUntil))
		}
	})
}

func TestConcurrentWaitersAreServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 60, TPM: 6000}, time.Now)
		var mu sync.Mutex
		var got []int
		for i := range 5 {
			go func() {
				tk, err := lane.Wait(t.Context(), 50+i*1000) // the large ones must not be starved
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, i)
				mu.Unlock()
				tk.Settle(0)
			}()
			synctest.Wait() // each reserves before the next starts
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if len(got) != 5 {
			t.Fatalf("admitted %v, want all 5", got)
		}
		for i, v := range got {
			if v != i {
				t.Errorf("admission order %v, want first come first served", got)
				break
			}
		}
	})
}

func TestCeiling(t *testing.T) {
	for _, tc := range []struct {
		l    ratelimit.Limits
		tok  float64
		want float64
	}{
		{ratelimit.Limits{RPM: 600}, 100, 10},
		{ratelimit.Limits{RPM: 600, TPM: 30_000}, 100, 5},
		{ratelimit.Limits{TPM: 60_000}, 1000, 1},
		{ratelimit.Limits{}, 1000, 0},
	} {
		if got := tc.l.Ceiling(tc.tok); got != tc.want {
			t.Errorf("%+v.Ceiling(%v) = %v, want %v", tc.l, tc.tok, got, tc.want)
		}
	}
}

func BenchmarkWaitUncontended(b *testing.B) {
	lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 1_000_000_000, TPM: 1_000_000_000_000}, time.Now)
	ctx := context.Background()
	for b.Loop() {
		tk, err := lane.Wait(ctx, 500)
		if err != nil {
			b.Fatal(err)
		}
		tk.Settle(400)
	}
}

func BenchmarkWaitParallel(b *testing.B) {
	lane := ratelimit.New("p/m", ratelimit.Limits{RPM: 1_000_000_000, TPM: 1_000_000_000_000}, time.Now)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tk, err := lane.Wait(ctx, 500)
			if err != nil {
				b.Error(err)
				return
			}
			tk.Settle(400)
		}
	})
}
