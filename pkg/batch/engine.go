// Package batch is the pipeline of `llmbatch run`: read → analyse → select → wait for the lane's
// limits → send → classify, retry or fail over → write. Each prompt is one job goroutine; at most
// four times the concurrency (and at least 256) jobs exist at once, so memory stays bounded whatever
// the input size, and one goroutine owns the output.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/progress"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// Options configure one run.
type Options struct {
	Config    *config.Config
	Providers map[string]provider.Provider // adapters of the usable providers, by provider name
	// Lanes are the configured (provider, model) lanes as the selector sees them; those whose
	// provider has no adapter in Providers are left out.
	Lanes []*selector.Lane
	// Source streams the prompts (already validated), analysed against Lanes, in input order.
	Source Source
	// Done reports whether a prompt already has a current ok result (resume); nil = none done.
	Done func(id, hash string) bool
	// Cache, when set, is checked for every prompt before it is sent: a hit is written as the
	// prompt's result and nothing is sent. It keeps the answers the run buys. nil = no cache.
	Cache interface {
		Known(req *request.Request) (*results.Result, bool)
		Store(req *request.Request, r *results.Result)
	}
	Output *results.Writer // owned by the engine's writer goroutine for the duration of Run

	Select      selector.Options
	Concurrency int     // total requests in flight; 0 = config default
	MaxCost     float64 // USD hard cap; 0 = none
	Verbose     bool    // keep the attempt log in result lines
	// Grace bounds how long a graceful stop waits for requests in flight.
	Grace time.Duration
	// Stop, when closed, stops dispatching: in-flight requests finish (within Grace) and are written.
	Stop <-chan struct{}

	Progress *progress.Display
	Summary  *progress.Summary
	Logger   *slog.Logger
	Now      func() time.Time
	Rand     func() float64 // uniform in [0,1), for backoff jitter; nil = math/rand/v2
}

// Source streams the prompts of a run in input order, each with its selector item, calling yield
// once per prompt; it stops at yield's first error and returns it.
type Source func(ctx context.Context, yield func(req *request.Request, item selector.Item) error) error

// Report is what a run did.
type Report struct {
	Prompts     int // prompts read
	Skipped     int // already done in the existing output
	OK          int
	Failed      int
	Remaining   int     // prompts without a result line (interrupt, budget)
	CostUSD     float64 // settled
	Budget      bool    // dispatch stopped because --max-cost was reached
	Interrupted bool
	Elapsed     time.Duration
}

// ErrWrite wraps a failure to write the output: the run stops at once.
var ErrWrite = errors.New("writing results")

// Run executes the batch. It returns an error only for what stops a run early and abnormally
// (output write failure, input read failure, ctx cancelled); prompts that fail are result lines.
func Run(ctx context.Context, opts Options) (*Report, error) {
	e, err := newEngine(opts)
	if err != nil {
		return nil, err
	}
	return e.run(ctx)
}

type engine struct {
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	rand    func() float64
	randMu  sync.Mutex
	lanes   []*lane
	byKey   map[*selector.Lane]*lane
	planner *selector.Planner
	slots   chan struct{} // global in-flight bound
	budget  budget

	// dispatchCtx is cancelled to stop starting requests (stop signal, budget, write error);
	// sendCtx only when the run must end at once.
	dispatchCtx  context.Context
	stopDispatch context.CancelCauseFunc
	sendCtx      context.Context
	results      chan *results.Result
	budgetHit    atomic.Bool
	recovered    recovery // a lane came back: jobs queued on fallback lanes choose again
}

var errBudget = errors.New("budget reached")
var errStopped = errors.New("stopped")

func newEngine(o Options) (*engine, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Concurrency <= 0 {
		o.Concurrency = o.Config.Defaults.Concurrency
	}
	if o.Grace <= 0 {
		o.Grace = 30 * time.Second
	}
	e := &engine{opts: o, now: o.Now, log: o.Logger, rand: o.Rand,
		slots: make(chan struct{}, o.Concurrency), budget: budget{limit: o.MaxCost}}
	lanes, err := buildLanes(o.Config, o.Lanes, o.Providers, o.Concurrency, o.Now)
	if err != nil {
		return nil, err
	}
	e.lanes = lanes
	e.byKey = make(map[*selector.Lane]*lane, len(lanes))
	sels := make([]*selector.Lane, len(lanes))
	for i, l := range lanes {
		sels[i] = l.sel
		e.byKey[l.sel] = l
	}
	e.planner = selector.NewPlanner(sels, o.Select)
	return e, nil
}

func (e *engine) run(ctx context.Context) (*Report, error) {
	start := e.now()
	rep := &Report{}
	var abandon context.CancelFunc
	e.sendCtx, abandon = context.WithCancel(ctx)
	defer abandon()
	var cancel context.CancelCauseFunc
	e.dispatchCtx, cancel = context.WithCancelCause(ctx)
	e.stopDispatch = cancel
	defer cancel(nil)
	if e.opts.Stop != nil {
		go func() {
			select {
			case <-e.opts.Stop:
				cancel(errStopped)
			case <-e.dispatchCtx.Done():
			}
		}()
	}

	// One goroutine owns the output; jobs hand it finished results.
	e.results = make(chan *results.Result, 256)
	writeErr := make(chan error, 1)
	go func() { writeErr <- e.writeLoop(rep) }()

	window := make(chan struct{}, max(4*e.opts.Concurrency, 256))
	var jobs sync.WaitGroup
	readErr := e.produce(window, &jobs, rep)
	// Wait for the jobs; after a stop give in-flight requests Grace to finish before abandoning them.
	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-e.dispatchCtx.Done():
		// After a write failure their answers could not be written: nothing is worth waiting for.
		if !errors.Is(context.Cause(e.dispatchCtx), ErrWrite) {
			timer := time.NewTimer(e.opts.Grace)
			select {
			case <-done:
			case <-timer.C:
				e.log.Warn("requests still in flight after the grace period were abandoned", "grace", e.opts.Grace)
			case <-ctx.Done():
			}
			timer.Stop()
		}
		abandon() // in-flight requests end now, unwritten (they are resumed later)
		<-done
	}
	close(e.results) // no job is left to send on it
	werr := <-writeErr

	e.reportCeilings()
	rep.CostUSD = e.budget.total()
	rep.Elapsed = e.now().Sub(start)
	rep.Budget = e.budgetHit.Load()
	rep.Remaining = rep.Prompts - rep.Skipped - rep.OK - rep.Failed
	cause := context.Cause(e.dispatchCtx)
	rep.Interrupted = errors.Is(cause, errStopped) || ctx.Err() != nil
	switch {
	case werr != nil:
		return rep, werr
	case readErr != nil:
		return rep, readErr
	case ctx.Err() != nil:
		return rep, ctx.Err()
	}
	return rep, nil
}

// produce streams the input and starts one job per prompt that still needs an answer, never more
// than cap(window) at once. After a stop it reads on without sending, to count what remains.
func (e *engine) produce(window chan struct{}, jobs *sync.WaitGroup, rep *Report) error {
	err := e.opts.Source(e.sendCtx, func(req *request.Request, item selector.Item) error {
		rep.Prompts++
		if e.opts.Done != nil && e.opts.Done(req.ID, req.Hash) {
			rep.Skipped++
			return nil
		}
		if e.dispatchCtx.Err() != nil {
			return nil
		}
		if e.opts.Cache != nil {
			if r, hit := e.opts.Cache.Known(req); hit {
				e.results <- r // the writer drains the channel until every job and the producer are done
				return nil
			}
		}
		j := e.newJob(req, item)
		select {
		case window <- struct{}{}:
		case <-e.dispatchCtx.Done():
			return nil
		}
		jobs.Add(1)
		go func() {
			defer jobs.Done()
			defer func() { <-window }()
			if r := j.run(); r != nil {
				if e.opts.Cache != nil {
					e.opts.Cache.Store(j.req, r)
				}
				e.results <- r
			}
		}()
		return nil
	})
	if err != nil && e.sendCtx.Err() == nil {
		e.stopDispatch(err)
		return fmt.Errorf("reading the input: %w", err)
	}
	return nil
}

// writeLoop writes every result the jobs produce; the first write error stops dispatch.
func (e *engine) writeLoop(rep *Report) error {
	var werr error
	for r := range e.results {
		if werr != nil {
			continue // drain: nothing more is written after a failure
		}
		if err := e.opts.Output.Write(r); err != nil {
			werr = fmt.Errorf("%w: %w", ErrWrite, err)
			e.stopDispatch(werr)
			continue
		}
		if r.Status == results.StatusOK {
			rep.OK++
		} else {
			rep.Failed++
		}
		e.record(r)
	}
	return werr
}

// record feeds the progress display and summary with one finished prompt.
func (e *engine) record(r *results.Result) {
	o := progress.Outcome{Provider: r.Provider, Model: r.Model, OK: r.Status == results.StatusOK,
		CostUSD: r.CostUSD, Latency: time.Duration(r.LatencyMS) * time.Millisecond, Retries: max(r.Attempts-1, 0)}
	if r.Usage != nil {
		o.InputTokens, o.OutputTokens = r.Usage.InputTokens, r.Usage.OutputTokens
	}
	if e.opts.Progress != nil {
		e.opts.Progress.Add(o)
	}
	if e.opts.Summary != nil {
		e.opts.Summary.Add(o)
	}
}

// hitBudget stops dispatch because the next request would break the cost cap.
func (e *engine) hitBudget() {
	if e.budgetHit.CompareAndSwap(false, true) {
		e.log.Warn("budget reached: no more requests are sent", "max_cost_usd", e.opts.MaxCost)
		e.stopDispatch(errBudget)
	}
}

// jitter draws from the injected random source; math/rand's sources are not goroutine-safe.
func (e *engine) jitter() float64 {
	e.randMu.Lock()
	defer e.randMu.Unlock()
	return e.rand()
}

// reportCeilings gives the summary each lane's theoretical ceiling, min(RPM, TPM/tokens per request),
// from the limits in force at the end (configured or learned) and the lane's mean admission size.
func (e *engine) reportCeilings() {
	if e.opts.Summary == nil {
		return
	}
	for _, l := range e.lanes {
		n := l.admitted.Load()
		if n == 0 {
			continue
		}
		perRequest := float64(l.admittedTokens.Load()) / float64(n)
		e.opts.Summary.SetCeiling(l.prov.name, l.sel.Name, l.limiter.Snapshot().Limits.Ceiling(perRequest))
	}
}
