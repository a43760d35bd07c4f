package ratelimit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
)

// TestReserveAtSteps steps one lane through explicit times t0..tn: each row reserves (or asks the
// delay for) a request at a time and states when it may be sent.
func TestReserveAtSteps(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// RPM 120 with unknown enforcement: one second's share (2) per sub-window of 1 s plus its guard
	// (1/60 s), the 60 s window holding 120; RPD 6.
	sub := time.Second + time.Second/60
	type step struct {
		at     time.Time
		tokens int
		delay  bool          // DelayAt only: nothing reserved
		want   time.Time     // the slot
		wantD  time.Duration // with delay
		err    error
	}
	for _, tc := range []struct {
		name   string
		limits ratelimit.Limits
		steps  []step
	}{
		{"one second's share at a time", ratelimit.Limits{RPM: 120, RPD: 6}, []step{
			{at: t0, want: t0},
			{at: t0, want: t0},
			{at: t0, delay: true, wantD: sub},
			{at: t0, want: t0.Add(sub)},
			{at: t0, want: t0.Add(sub)},
			{at: ms(2000), want: t0.Add(2 * sub)}, // the sub-window of t0+sub is still full
			{at: ms(2000), want: t0.Add(2 * sub)},
			{at: ms(3000), err: ratelimit.ErrDailyExhausted},
			{at: ms(3000), delay: true, wantD: ratelimit.Never},
		}},
		{"full 60 s window: the burst, then the window", ratelimit.Limits{RPM: 3, Window: time.Minute}, []step{
			{at: t0, want: t0},
			{at: t0, want: t0},
			{at: ms(500), want: ms(500)},
			{at: ms(600), want: t0.Add(61 * time.Second)},
			{at: ms(600), delay: true, wantD: 61*time.Second - 600*time.Millisecond},
		}},
		{"10 s window of 3,600 RPM: 600 at once", ratelimit.Limits{RPM: 3600, Window: 10 * time.Second}, append(
			repeat(600, step{at: t0, want: t0}),
			step{at: t0, want: t0.Add(10*time.Second + 10*time.Second/60)})},
		{"quantum of 1 s: its share, then the next", ratelimit.Limits{RPM: 150, Quantum: time.Second}, append(
			repeat(2, step{at: t0, want: t0}), // 2.5 a second, rounded down as providers do
			step{at: t0, want: t0.Add(sub)})},
		{"tokens per minute", ratelimit.Limits{TPM: 6100}, []step{ // one second's share: 102 tokens
			{at: t0, tokens: 100, want: t0},
			{at: t0, tokens: 100, want: t0.Add(sub)},
			{at: t0, tokens: 6101, err: ratelimit.ErrTooLarge},
		}},
		{"unknown limits never wait", ratelimit.Limits{}, []step{
			{at: t0, tokens: 1e6, want: t0},
			{at: t0, tokens: 1e6, want: t0},
			{at: ms(1), delay: true, wantD: 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ratelimit.New("p/m", tc.limits, func() time.Time { return t0 })
			for i, s := range tc.steps {
				if s.delay {
					if d := l.DelayAt(s.at, s.tokens); d != s.wantD && (d-s.wantD > time.Microsecond || s.wantD-d > time.Microsecond) {
						t.Errorf("step %d: DelayAt = %v, want %v", i, d, s.wantD)
					}
					continue
				}
				tk, err := l.ReserveAt(s.at, s.tokens)
				if s.err != nil {
					if !errors.Is(err, s.err) {
						t.Errorf("step %d: err %v, want %v", i, err, s.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if d := tk.At().Sub(s.want); d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("step %d: slot at t0+%v, want t0+%v", i, tk.At().Sub(t0), s.want.Sub(t0))
				}
			}
		})
	}
}

func repeat[T any](n int, x T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = x
	}
	return out
}

// TestObserveAtAdoptsHeaders: a response's headers at an explicit time set the limit the next
// decision uses.
func TestObserveAtAdoptsHeaders(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.New("p/m", ratelimit.Limits{}, func() time.Time { return t0 })
	if d := l.DelayAt(t0, 1); d != 0 {
		t.Fatalf("unknown limits: delay %v", d)
	}
	l.ObserveAt(t0, provider.RateLimits{HasRequests: true, LimitRequests: 60, RemainingRequests: 0,
		ResetRequests: 30 * time.Second})
	if got := l.Snapshot().Limits.RPM; got != 60 {
		t.Fatalf("RPM after headers = %d, want 60", got)
	}
	if d := l.DelayAt(t0, 1); d <= 0 {
		t.Errorf("no remaining requests for 30 s, yet delay %v", d)
	}
}
