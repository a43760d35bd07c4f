package retry

import (
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	p := Policy{MaxAttempts: 3, Base: time.Second, Max: 8 * time.Second} // no jitter: exact delays
	server := mk(TypeServerError)
	limited := mk(TypeRateLimit)
	limitedAfter := limited
	limitedAfter.RetryAfter = 7 * time.Second
	for _, tc := range []struct {
		name  string
		s     State
		c     Class
		step  Step
		delay time.Duration
	}{
		{"first 500 retries after base", State{LaneFailures: 1}, server, Again, time.Second},
		{"second 500 doubles", State{LaneFailures: 2}, server, Again, 2 * time.Second},
		{"on a healthy lane the backoff stays short", State{LaneFailures: 2, LaneHealthy: true}, server, Again, 2 * time.Second},
		{"on a failing lane it grows", State{LaneFailures: 3, OtherLanes: true}, mk(TypeTimeout), OtherLane, 0},
		{"third 500 on the only lane fails", State{LaneFailures: 3}, server, Fail, 0},
		{"third 500 moves to another lane", State{LaneFailures: 3, OtherLanes: true}, server, OtherLane, 0},
		{"timeout retries", State{LaneFailures: 1}, mk(TypeTimeout), Again, time.Second},
		{"429 retries with backoff", State{RateLimited: 3}, limited, Again, 4 * time.Second},
		{"429 honours Retry-After", State{RateLimited: 1}, limitedAfter, Again, 7 * time.Second},
		{"429 backoff stays short", State{RateLimited: 5}, limited, Again, 4 * time.Second},
		{"429 within its own allowance", State{RateLimited: 12, LaneFailures: 3}, limited, Again, 4 * time.Second},
		{"429 past its allowance fails", State{RateLimited: 13}, limited, Fail, 0},
		{"not_found fails over", State{}, mk(TypeNotFound), OtherLane, 0},
		{"context_length goes larger", State{}, mk(TypeContextLength), LargerLane, 0},
		{"auth disables the provider", State{}, mk(TypeAuth), Disable, 0},
		{"quota disables the provider", State{}, mk(TypeQuotaExhausted), Disable, 0},
		{"bad request fails", State{LaneFailures: 0}, mk(TypeBadRequest), Fail, 0},
		{"canceled fails", State{}, mk(TypeCanceled), Fail, 0},
	} {
		step, delay := Next(tc.s, tc.c, p)
		if step != tc.step || delay != tc.delay {
			t.Errorf("%s: Next = %v, %v; want %v, %v", tc.name, step, delay, tc.step, tc.delay)
		}
	}
}

func TestNextJitterBounds(t *testing.T) {
	p := Policy{MaxAttempts: 6, Base: time.Second, Max: time.Minute, Jitter: 0.5}
	for _, j := range []float64{0, 0.25, 0.5, 0.999} {
		_, d := Next(State{LaneFailures: 2, Jitter: j}, mk(TypeServerError), p)
		if d < time.Second || d > 3*time.Second {
			t.Errorf("jitter %v: delay %v outside 2s±50%%", j, d)
		}
	}
}

func TestStateCount(t *testing.T) {
	s := State{}.Count(mk(TypeRateLimit)).Count(mk(TypeServerError)).Count(mk(TypeBadRequest)).Count(mk(TypeNotFound))
	if s.RateLimited != 1 || s.LaneFailures != 1 {
		t.Errorf("Count: %+v, want one 429 and one lane failure", s)
	}
	if Again.String() != "again" || Disable.String() != "disable" {
		t.Error("Step.String")
	}
}
