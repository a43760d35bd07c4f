package batch

import (
	"context"
	"errors"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
)

// This file holds the seams the next modes plug into, each with today's code as its first
// implementation (see the package doc for where each sits on a request's path):
//   - LimitStore: where a lane's rate limits are kept; today in-process (ratelimit), next Redis.
//   - Dispatcher: how a lane's admitted requests reach the provider; one HTTP request per prompt.
//     (Provider batch jobs take their prompts before admission instead: batchroute.go.)
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

// reserver is implemented by limiters that reserve a slot apart from waiting for it
// (ratelimit.Limiter): under --prefer speed a job chooses its lane and takes its place there under
// one lock, so jobs choosing at once do not all pick the lane that was soonest before any of them
// reserved.
type reserver interface {
	Reserve(tokens int) (heldTicket, error)
}

// heldTicket is a reserved slot not yet waited for: Wait sleeps until it (or Cancel gives it back).
type heldTicket interface {
	Ticket
	Wait(ctx context.Context) error
}

func (l localLimiter) Reserve(tokens int) (heldTicket, error) {
	t, err := l.Limiter.Reserve(tokens)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// BreakerSharer is implemented by Limiters whose lane is shared with other processes (Redis): an
// open circuit breaker is published, so every process keeps off the failing lane until it may be
// tried again.
type BreakerSharer interface {
	// PublishBreaker says this process's breaker for the lane is open until until.
	PublishBreaker(until time.Time)
	// BreakerOpenUntil is the latest such time another process published (zero = none).
	BreakerOpenUntil() time.Time
}

// SharedBudget is a --max-cost cap kept outside the process, so that several processes of one job
// (`run --shared --job NAME`) never exceed it together; nil = the cap is this process's alone.
type SharedBudget interface {
	// Reserve claims est USD before a request is sent. It may wait for requests in flight
	// (anywhere) to settle; it returns an error wrapping ErrBudgetReached when est does not fit
	// beside what the job has spent, or ctx's error.
	Reserve(ctx context.Context, est float64) error
	// Settle replaces a reservation of est USD by the actual cost.
	Settle(est, actual float64)
}

// ErrBudgetReached is what a SharedBudget's Reserve wraps when the job's cap is reached.
var ErrBudgetReached = errors.New("budget reached")

// Dispatcher sends the admitted requests of one provider's lanes and returns each answer. Today's
// is realtime: one HTTP request per prompt through the provider's adapter; another transport of
// single requests (a gateway, a recorder in tests) plugs in here.
type Dispatcher interface {
	Send(ctx context.Context, req *provider.Request) (*provider.Response, error)
}

// realtime is the Dispatcher of one request per prompt.
type realtime struct{ api provider.Provider }

func (d realtime) Send(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	return d.api.Complete(ctx, req)
}
