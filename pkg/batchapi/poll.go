package batchapi

import (
	"context"
	"errors"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// PollPolicy paces Wait.
type PollPolicy struct {
	First time.Duration // the first interval (providers.yaml batch.poll); 30s when 0
	Max   time.Duration // the longest interval; 5m when 0
	// Factor multiplies the interval after each poll that saw no progress; 1.5 when 0.
	Factor float64
}

// next returns the interval after one that was d, with or without progress on the last poll:
// progress (more lines done, a new status) goes back to First, none backs off by Factor up to Max.
// It is a pure function of its inputs, as the pacing decision should be.
func (p PollPolicy) next(d time.Duration, progressed bool) time.Duration {
	p = p.withDefaults()
	if progressed || d <= 0 {
		return p.First
	}
	n := time.Duration(float64(d) * p.Factor)
	return min(max(n, p.First), p.Max)
}

func (p PollPolicy) withDefaults() PollPolicy {
	if p.First <= 0 {
		p.First = 30 * time.Second
	}
	if p.Max <= 0 {
		p.Max = 5 * time.Minute
	}
	if p.Max < p.First {
		p.Max = p.First
	}
	if p.Factor <= 1 {
		p.Factor = 1.5
	}
	return p
}

// Wait polls job id until it has ended and returns its last state. Between polls it waits on a timer
// (or ctx): the interval starts at p.First and backs off while nothing changes; a poll answered with
// a Retry-After waits at least that long; transient failures (connection errors, 429, 5xx) are
// retried with the same backoff, any other error is returned. onPoll (may be nil) sees every state.
func Wait(ctx context.Context, c Client, id string, p PollPolicy, onPoll func(*Job)) (*Job, error) {
	var last *Job
	d := time.Duration(0)
	for {
		j, err := c.Get(ctx, id)
		wait := time.Duration(0)
		switch {
		case err == nil:
			if onPoll != nil {
				onPoll(j)
			}
			if j.Status.Ended() {
				return j, nil
			}
			progressed := last == nil || j.Status != last.Status || j.Done != last.Done
			d = p.next(d, progressed && last != nil)
			last = j
		case transient(err):
			d = p.next(d, false)
			var ae *provider.APIError
			if errors.As(err, &ae) {
				wait = ae.RetryAfter
			}
		default:
			return last, err
		}
		if err := sleep(ctx, max(d, wait)); err != nil {
			return last, err
		}
	}
}

// transient reports whether a failed poll is worth repeating.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ae *provider.APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.ConnBroken || ae.Malformed || retryableStatus(ae.StatusCode)
}

// sleep waits d on a timer, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
