package batch

import (
	"context"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
)

// This file holds the seams the next modes plug into, each with today's code as its first
// implementation (see the package doc for where each sits on a request's path):
//   - LimitStore: where a lane's rate limits are kept; today in-process (ratelimit), next Redis.
//   - Dispatcher: how a lane's admitted requests reach the provider; today one HTTP request per
//     prompt, next provider batch jobs.
//   - ResultSource (output.go): answers checked before sending: the resume scan, then the
//     response cache (Options.Cache, a ResponseCache; pkg/cache), which also keeps what is bought.

// LimitStore makes the rate limiter of each lane. Limiters of the same name share their limits.
type LimitStore interface {
	// Limiter returns the limiter of the lane named name ("provider/model") with the configured
	// limits (zero fields unknown, learned from headers).
	Limiter(name string, configured ratelimit.Limits) Limiter
}

// Limiter paces the requests of one lane; it is safe for concurrent use.
type Limiter interface {
	// Wait blocks until a request of tokens (prompt estimate + max output) may be sent and reserves
	// it. It fails at once with an error wrapping ratelimit.ErrDailyExhausted or ErrTooLarge when the
	// request cannot be admitted today or at all, and wrapping ctx.Err() when ctx ends first.
	Wait(ctx context.Context, tokens int) (Ticket, error)
	// Delay is how long a Wait for tokens would block now (for --prefer speed).
	Delay(tokens int) time.Duration
	// Observe learns from a response's rate-limit headers.
	Observe(provider.RateLimits)
	// Snapshot returns the limits in force (configured or learned).
	Snapshot() ratelimit.State
}

// Ticket is one admitted request; finish it exactly once (later calls are no-ops): Settle when the
// provider answered other than 429, RateLimited on a 429, Cancel when it was never sent.
type Ticket interface {
	Settle(actualTokens int)
	RateLimited(provider.RateLimits)
	Cancel()
}

// localLimits is the in-process LimitStore: one ratelimit.Limiter per lane, on the run's clock.
type localLimits struct{ now func() time.Time }

func (s localLimits) Limiter(name string, l ratelimit.Limits) Limiter {
	return localLimiter{ratelimit.New(name, l, s.now)}
}

type localLimiter struct{ *ratelimit.Limiter }

func (l localLimiter) Wait(ctx context.Context, tokens int) (Ticket, error) {
	t, err := l.Limiter.Wait(ctx, tokens)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return t, nil
}

// Dispatcher sends the admitted requests of one provider's lanes and returns each answer. Today's
// is realtime: one HTTP request per prompt through the provider's adapter. A provider batch-job
// dispatcher plugs in here: it may collect requests and answer each when its job completes.
type Dispatcher interface {
	Send(ctx context.Context, req *provider.Request) (*provider.Response, error)
}

// realtime is the Dispatcher of one request per prompt.
type realtime struct{ api provider.Provider }

func (d realtime) Send(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	return d.api.Complete(ctx, req)
}
