package ratelimit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
)

// fakeProvider enforces RPM/TPM over a sliding 60 s window the way our simulator does: a request is
// counted at arrival with its admission tokens, and rejected (not counted) when it would exceed a
// limit. Responses carry OpenAI-style headers unless hidden.
type fakeProvider struct {
	mu       sync.Mutex
	rpm, tpm int
	hide     bool // no limit headers on any response (429s still carry Retry-After)
	// resetOldest reports the reset as the time until the oldest admission leaves the window (when
	// capacity next grows, as pkg/sim does) instead of until the newest does (fully restored).
	resetOldest bool
	// netDelay, when set, is the time request i takes to reach the provider after admission.
	netDelay func(i int) time.Duration
	log      []arrival
}

type arrival struct {
	at     time.Time
	tokens int
}

func (p *fakeProvider) arrive(now time.Time, tokens int) (bool, provider.RateLimits) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.log) && !p.log[i].at.Add(time.Minute).After(now) {
		i++
	}
	p.log = p.log[i:]
	reqs, sum := len(p.log), 0
	for _, a := range p.log {
		sum += a.tokens
	}
	ok := (p.rpm == 0 || reqs+1 <= p.rpm) && (p.tpm == 0 || sum+tokens <= p.tpm)
	rl := provider.RateLimits{ObservedAt: now}
	if ok {
		p.log = append(p.log, arrival{now, tokens})
		reqs++
		sum += tokens
	} else {
		// Until enough of the window has slid out for this request.
		r, s := reqs, sum
		for _, a := range p.log {
			if (p.rpm == 0 || r+1 <= p.rpm) && (p.tpm == 0 || s+tokens <= p.tpm) {
				break
			}
			r, s = r-1, s-a.tokens
			rl.RetryAfter = a.at.Add(time.Minute).Sub(now)
		}
	}
	if p.hide {
		return ok, rl
	}
	var reset time.Duration
	if len(p.log) > 0 {
		reset = p.log[len(p.log)-1].at.Add(time.Minute).Sub(now)
		if p.resetOldest {
			reset = p.log[0].at.Add(time.Minute).Sub(now)
		}
	}
	if p.rpm > 0 {
		rl.HasRequests, rl.LimitRequests, rl.RemainingRequests, rl.ResetRequests = true, p.rpm, p.rpm-reqs, reset
	}
	if p.tpm > 0 {
		rl.HasTokens, rl.LimitTokens, rl.RemainingTokens, rl.ResetTokens = true, p.tpm, max(p.tpm-sum, 0), reset
	}
	return ok, rl
}

// result is what a drive produced.
type result struct {
	admitted []arrival // every admission, in order
	ok       []arrival // accepted by the provider
	rejected []arrival // answered 429
}

// between counts accepted requests and tokens with from <= at < to.
func (r *result) between(from, to time.Time) (reqs, tokens int) {
	for _, a := range r.ok {
		if !a.at.Before(from) && a.at.Before(to) {
			reqs++
			tokens += a.tokens
		}
	}
	return reqs, tokens
}

func (r *result) rejectedAfter(t time.Time) int {
	n := 0
	for _, a := range r.rejected {
		if !a.at.Before(t) {
			n++
		}
	}
	return n
}

// drive runs an engine-like loop inside a synctest bubble: workers in flight, each waiting on the
// lane, sending to p, holding the answer for latency and reporting it back to the lane, for dur.
func drive(t *testing.T, lane *ratelimit.Limiter, p *fakeProvider, workers int, latency, dur time.Duration, size func(i int) int) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dur)
	defer cancel()
	var (
		mu  sync.Mutex
		res result
		seq int
		wg  sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := seq
				n := size(i)
				seq++
				mu.Unlock()
				tk, err := lane.Wait(ctx, n)
				if err != nil {
					return
				}
				now := time.Now()
				if !tk.At().Equal(now) {
					t.Errorf("ticket admitted for %v returned at %v", tk.At(), now)
				}
				var delay time.Duration
				if p.netDelay != nil {
					delay = p.netDelay(i)
					time.Sleep(delay)
				}
				ok, rl := p.arrive(time.Now(), n)
				mu.Lock()
				res.admitted = append(res.admitted, arrival{now, n})
				if ok {
					res.ok = append(res.ok, arrival{now, n})
				} else {
					res.rejected = append(res.rejected, arrival{now, n})
				}
				mu.Unlock()
				time.Sleep(latency - delay)
				if ok {
					tk.Settle(n)
					lane.Observe(rl)
				} else {
					tk.RateLimited(rl)
				}
			}
		})
	}
	wg.Wait()
	return &res
}

// maxInWindow returns the most requests and tokens admitted in any window (t-w, t].
func maxInWindow(as []arrival, w time.Duration) (reqs, tokens int) {
	j, sum := 0, 0
	for i, a := range as {
		sum += a.tokens
		for !as[j].at.Add(w).After(a.at) {
			sum -= as[j].tokens
			j++
		}
		reqs = max(reqs, i-j+1)
		tokens = max(tokens, sum)
	}
	return reqs, tokens
}
