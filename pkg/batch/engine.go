package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/progress"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/redact"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/retry"
	"github.com/llmbatch/llmbatch/pkg/routing"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// Options configure one run. Config, Input and Output are required; the rest have defaults.
type Options struct {
	Config *config.Config
	Select selector.Options
	Getenv func(string) string // reads API key variables; nil = os.Getenv
	Input  string              // path, or "-" for Stdin
	Stdin  io.Reader
	Output string    // path, or "-" for Stdout
	Stdout io.Writer // receives the results when Output is "-"
	Fresh  bool      // move an existing output aside instead of resuming it
	Format results.Format

	// Via routes prompts: ViaRealtime (default), ViaBatch or ViaAuto (see batchroute.go).
	Via string

	Concurrency int     // total requests in flight; 0 = config default
	MaxCost     float64 // USD hard cap; 0 = none
	Verbose     bool    // keep the attempt log in result lines

	// Stop, when closed, stops the run gracefully: see the package doc.
	Stop <-chan struct{}
	// Grace bounds how long a graceful stop waits for requests in flight (default 30 s).
	Grace time.Duration

	// Transport, when set, returns the HTTP transport of a provider (nil from it = the default).
	Transport func(p *config.Provider) http.RoundTripper
	// Limits keeps the lanes' rate limits; nil = in-process (see LimitStore).
	Limits LimitStore
	// Budget keeps the MaxCost cap when processes share it; nil = this process's alone.
	Budget SharedBudget
	// Shard, when set (N > 1), restricts the run to the prompts of shard I of N (--shard i/n).
	Shard request.Shard
	// Dispatch returns the dispatcher of a provider; nil = one request per prompt (see Dispatcher).
	Dispatch func(p *config.Provider, api provider.Provider) Dispatcher
	// Cache, when set, opens the response cache for the run, given the lanes ("provider/model") the
	// run may use, in preference order (those --model and --provider leave). Prompts the resume
	// scan leaves are looked up in it before they are sent; nil = no cache.
	Cache func(lanes []string) ResponseCache
	// Observer, when set, is told every request's outcome and admission wait, and can read the
	// lanes' live state (metrics); nil = none.
	Observer Observer
	// OpenOutput, when set, opens the output for appending instead of results.OpenAppend. Each
	// result line reaches it in one Write call; at the end Run calls its Sync (if any) and Close.
	OpenOutput func(path string) (io.WriteCloser, error)

	Warn io.Writer // "warning: ..." lines of the checks; nil = none
	// Progress builds the display once the input is counted: prompts in all, done of them already in
	// the resumed output; nil = none.
	Progress func(prompts, done int) *progress.Display
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
	Prompts   int // prompts read
	Skipped   int // already done in the existing output
	OK        int
	Failed    int
	Remaining int     // prompts without a result line (interrupt, budget)
	CostUSD   float64 // settled in this run
	// PriorCostUSD is the spend recorded in the resumed output by earlier runs: with CostUSD it is
	// what the job spent, which --max-cost caps.
	PriorCostUSD float64
	// Budget is set when prompts were left unsent because their worst-case cost did not fit the
	// --max-cost cap beside what was spent: BudgetLeft of them, BudgetLeftUSD their worst cases
	// together, so a cap of PriorCostUSD + CostUSD + BudgetLeftUSD lets them all run;
	// BudgetLeastUSD is the smallest of those worst cases (each was larger than what remained).
	Budget         bool
	BudgetLeft     int
	BudgetLeftUSD  float64
	BudgetLeastUSD float64
	Interrupted    bool
	Elapsed        time.Duration
}

// ErrWrite wraps a failure to write the output: the run stops at once.
var ErrWrite = errors.New("writing results")

// Run prepares and executes the batch: Prepare, the adapters, the output (resumed, or moved aside
// with Fresh), the engine, then compaction of the output. Problems found before anything is sent
// are *UsageError (or ErrInterrupted). Otherwise it returns the report, with an error only for what
// stops a run early and abnormally (output write failure, input read failure, ctx cancelled);
// prompts that fail are result lines.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.setDefaults()
	if o.Output != "-" { // one writer per output, held to the end, compaction included
		lock, err := results.Lock(o.Output, o.Input, o.Now())
		if err != nil {
			return nil, usageErr(err)
		}
		defer lock.Unlock()
		o.Output = lock.Path() // a symlinked output is written through to its target
	}
	cp, err := scanOutput(&o, o.Logger)
	if err != nil {
		return nil, err
	}
	var done func(id, hash string) bool
	if cp != nil {
		done = cp.Done
	}
	checkCtx, stopWatching := untilStopped(ctx, o.Stop) // nothing is sent yet: a stop acts at once
	p, err := Prepare(checkCtx, PrepareOptions{Config: o.Config, Select: o.Select, Getenv: o.Getenv,
		Input: o.Input, Stdin: o.Stdin, Warn: o.Warn, Done: done, Shard: o.Shard})
	if stopWatching() {
		if p != nil {
			p.Close()
		}
		return nil, ErrInterrupted
	}
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if p.Prompts == 0 {
		return &Report{}, nil // nothing to do, and no output is created for it
	}
	apis, err := buildAdapters(o.Config, o.Getenv, o.Concurrency, o.Transport, o.Now)
	if err != nil {
		return nil, err
	}
	targets, err := buildTargets(o.Config, p.Lanes, apis, o.Concurrency, o.Limits, o.Dispatch, o.Now)
	if err != nil {
		return nil, usageErr(err)
	}
	out, err := openOutput(&o, cp, o.Logger, o.Now)
	if err != nil {
		return nil, err
	}
	e := newEngine(o, targets)
	e.source, e.known = p.source(), out.known
	if cp != nil && out.known != nil && o.Budget == nil {
		// --max-cost is the job's cap (DESIGN §8); a shared budget keeps the job's spend itself.
		e.budget.prior = cp.CostUSD
	}
	if o.Observer != nil {
		o.Observer.Lanes(e.laneStates)
	}
	if o.Cache != nil {
		if c := o.Cache(laneNames(selector.Pinned(p.Lanes, o.Select.PinModel, o.Select.PinProvider))); c != nil {
			e.known, e.cache = firstKnown{out.known, c}, c
		}
	}
	if e.route, err = newBatchRoute(e, &o, p.Input); err != nil {
		_ = out.close()
		return nil, err
	}
	e.output = results.NewWriter(out.w, o.Format, results.WithClock(o.Now), results.WithName(out.path))
	if o.Progress != nil {
		e.display = o.Progress(p.Prompts, p.Done)
	}
	rep, runErr := e.run(ctx)
	if e.display != nil {
		e.display.Finish()
	}
	if cerr := out.close(); cerr != nil && runErr == nil {
		runErr = fmt.Errorf("closing %s: %w", out.path, cerr)
	}
	if !errors.Is(runErr, ErrWrite) {
		out.compact(o.Format, o.Logger)
	}
	return rep, runErr
}

// setDefaults fills the options left zero.
func (o *Options) setDefaults() {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
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
	if o.Limits == nil {
		o.Limits = localLimits{now: o.Now}
	}
	if o.Dispatch == nil {
		o.Dispatch = func(_ *config.Provider, api provider.Provider) Dispatcher { return realtime{api} }
	}
}

// untilStopped returns ctx cancelled when stop is closed, and a function that stops watching and
// reports whether stop was closed.
func untilStopped(ctx context.Context, stop <-chan struct{}) (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	if stop == nil {
		return ctx, func() bool { cancel(); return false }
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
			cancel()
		case <-done:
		}
	}()
	return ctx, func() bool {
		close(done)
		cancel()
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
}

type engine struct {
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	rand    func() float64
	randMu  sync.Mutex
	targets []*target
	planner *selector.Planner
	slots   chan struct{} // global in-flight bound
	// deadAfter bounds how long a prompt waits on lanes that are all unusable (defaults.dead_after).
	deadAfter time.Duration
	budget    budget
	speedMu   sync.Mutex // --prefer speed: a job's choice of lane and its reservation there are one step

	source Source
	known  ResultSource  // nil = nothing known
	cache  ResponseCache // keeps the answers bought; nil = none
	route  *batchRoute   // nil = --via realtime
	// acks holds, for results that wait to be written (batch answers: their job is recorded as
	// downloaded only then), a channel the writer closes once the line is written.
	acks    sync.Map
	output  *results.Writer
	display *progress.Display // nil = none

	// halted ends when no new request may start (Stop, write error, input error, ctx): its cause says
	// why. wire ends the requests already sent: at ctx's end, or when a halt's grace runs out.
	// These two are the only stop states; see "Stopping" in the package doc.
	halted   context.Context
	halt     context.CancelCauseFunc
	wire     context.Context
	results  chan finishedPrompt
	leftover leftover // prompts left unsent by the budget
	// lastDone is when the last prompt completed (unix ns), for the display's stall status.
	lastDone  atomic.Int64
	recovered recovery // a lane came back: jobs queued on fallback lanes choose again
}

// errBudget is budget.reserve's refusal: the prompt's worst case cannot fit the cap any more.
var errBudget = errors.New("budget reached")
var errStopped = errors.New("stopped")

// newEngine builds the engine over lanes; o has its defaults set.
func newEngine(o Options, targets []*target) *engine {
	e := &engine{opts: o, now: o.Now, log: o.Logger, rand: o.Rand, targets: targets, deadAfter: config.DefaultDeadAfter,
		slots: make(chan struct{}, o.Concurrency), budget: budget{limit: o.MaxCost, shared: o.Budget}}
	if o.Config != nil && o.Config.Defaults.DeadAfter > 0 {
		e.deadAfter = o.Config.Defaults.DeadAfter.D()
	}
	sels := make([]*selector.Lane, len(targets))
	for i, l := range targets {
		sels[i] = l.sel
	}
	e.planner = selector.NewPlanner(sels, o.Select)
	return e
}

func (e *engine) run(ctx context.Context) (*Report, error) {
	start := e.now()
	rep := &Report{}
	var abandon context.CancelFunc
	e.wire, abandon = context.WithCancel(ctx)
	defer abandon()
	if e.display != nil {
		e.lastDone.Store(start.UnixNano())
		stalls := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			e.watchStalls(stalls)
		}()
		defer func() {
			close(stalls)
			<-watched
		}()
	}
	var cancel context.CancelCauseFunc
	e.halted, cancel = context.WithCancelCause(ctx)
	e.halt = cancel
	defer cancel(nil)
	if e.opts.Stop != nil {
		go func() {
			select {
			case <-e.opts.Stop:
				cancel(errStopped)
			case <-e.halted.Done():
			}
		}()
	}

	// One goroutine owns the output; jobs hand it finished results.
	e.results = make(chan finishedPrompt, 256)
	writeErr := make(chan error, 1)
	go func() { writeErr <- e.writeLoop(rep) }()

	window := make(chan struct{}, max(4*e.opts.Concurrency, 256))
	var jobs sync.WaitGroup
	if e.route != nil {
		e.route.start(e.halted)
	}
	readErr := e.produce(window, &jobs, rep)
	if e.route != nil {
		e.route.inputDone()
	}
	// Wait for the jobs; after a stop give in-flight requests Grace to finish before abandoning them.
	done := make(chan struct{})
	var routeErr error
	go func() {
		jobs.Wait()
		if e.route != nil {
			routeErr = e.route.wait() // batch runners stop at once on a halt: their jobs stay live
		}
		close(done)
	}()
	select {
	case <-done:
	case <-e.halted.Done():
		// After a write failure their answers could not be written: nothing is worth waiting for.
		if !errors.Is(context.Cause(e.halted), ErrWrite) {
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
	rep.PriorCostUSD = e.budget.prior
	rep.Elapsed = e.now().Sub(start)
	rep.BudgetLeft, rep.BudgetLeftUSD, rep.BudgetLeastUSD = e.leftover.get()
	rep.Budget = rep.BudgetLeft > 0
	rep.Remaining = rep.Prompts - rep.Skipped - rep.OK - rep.Failed
	cause := context.Cause(e.halted)
	rep.Interrupted = errors.Is(cause, errStopped) || ctx.Err() != nil
	switch {
	case werr != nil:
		return rep, werr
	case readErr != nil:
		return rep, readErr
	case routeErr != nil && ctx.Err() == nil:
		return rep, routeErr
	case ctx.Err() != nil:
		return rep, ctx.Err()
	}
	return rep, nil
}

// produce streams the input and starts one job per prompt that still needs an answer, never more
// than cap(window) at once. After a stop it reads on without sending, to count what remains.
func (e *engine) produce(window chan struct{}, jobs *sync.WaitGroup, rep *Report) error {
	err := e.source(e.wire, func(req *request.Request, item selector.Item) error {
		rep.Prompts++
		if e.known != nil {
			if r, skip := e.known.Known(req); skip {
				if r != nil {
					e.results <- finishedPrompt{r: r} // counted as ok or failed when written; nothing was sent
				} else {
					rep.Skipped++
				}
				return nil
			}
		}
		if e.halted.Err() != nil {
			return nil
		}
		j := e.newJob(req, item)
		if e.route != nil {
			if bl := e.route.wants(j); bl != nil {
				_ = e.route.add(e.halted, bl, j) // fails only on a halt, which ends dispatch anyway
				return nil
			}
		}
		select {
		case window <- struct{}{}:
		case <-e.halted.Done():
			return nil
		}
		jobs.Add(1)
		go func() {
			defer jobs.Done()
			defer func() { <-window }()
			// An unfinished prompt (stop, budget) still reports its retries: the summary counts
			// every request this run sent.
			r := j.run()
			if r != nil && e.cache != nil {
				e.cache.Store(j.req, r)
			}
			e.results <- finishedPrompt{r: r, retries: max(j.attempts-1, 0)}
		}()
		return nil
	})
	if err != nil && e.wire.Err() == nil {
		e.halt(err)
		return fmt.Errorf("reading the input: %w", err)
	}
	return nil
}

// writeLoop writes every result the jobs produce; the first write error stops dispatch.
func (e *engine) writeLoop(rep *Report) error {
	var werr error
	for f := range e.results {
		r := f.r
		if r == nil {
			e.record(f) // unfinished: its 429s and retries only
			continue
		}
		if werr != nil {
			continue // drain: nothing more is written after a failure
		}
		if err := e.output.Write(r); err != nil {
			werr = fmt.Errorf("%w: %w", ErrWrite, err)
			e.halt(werr)
			continue
		}
		if ack, ok := e.acks.LoadAndDelete(r); ok {
			close(ack.(chan struct{}))
		}
		if r.Status == results.StatusOK {
			rep.OK++
		} else {
			rep.Failed++
		}
		e.record(f)
	}
	return werr
}

// finishedPrompt is a prompt's result on its way to the writer, with the retries it made in this run
// (for the summary; its 429s are counted as they come, under the lane that got them: job.attempt).
// A nil r is a prompt left unfinished (stop, budget): nothing is written for it, but its retries
// are counted.
type finishedPrompt struct {
	r       *results.Result
	retries int // requests sent in this run after the first
}

// record feeds the progress display and summary with one finished (or unfinished) prompt. The
// counts come from the run, not the result line: a line from the cache or an earlier run sent
// nothing now.
func (e *engine) record(f finishedPrompt) {
	r := f.r
	if r == nil {
		if e.opts.Summary != nil && f.retries > 0 {
			e.opts.Summary.Add(progress.Outcome{Unfinished: true, Retries: f.retries})
		}
		return
	}
	e.lastDone.Store(e.now().UnixNano())
	o := progress.Outcome{Provider: r.Provider, Model: r.Model, OK: r.Status == results.StatusOK,
		CostUSD: r.CostUSD, Latency: time.Duration(r.LatencyMS) * time.Millisecond, Retries: f.retries}
	if r.Usage != nil {
		o.InputTokens, o.OutputTokens = r.Usage.InputTokens, r.Usage.OutputTokens
	}
	if e.display != nil {
		e.display.Add(o)
	}
	if e.opts.Summary != nil {
		e.opts.Summary.Add(o)
	}
}

// stallAfter is how long without a completed prompt before the display says why.
const stallAfter = 2 * time.Second

// watchStalls gives the display, once a second while no prompt has completed for stallAfter, the
// reason nothing completes (see stallReason), until done is closed.
func (e *engine) watchStalls(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := e.now()
		if now.Sub(time.Unix(0, e.lastDone.Load())) >= stallAfter {
			e.display.SetStatus(e.stallReason(now))
		}
	}
}

// stallReason says what the lanes are waiting for at now: open breakers (until their trial),
// failures being retried, rate limits (until the lane's next slot), spent daily quotas; failing
// that, the requests in flight. "" when nothing is known to wait.
func (e *engine) stallReason(now time.Time) string {
	var parts []string
	inFlight := int64(0)
	for _, l := range e.targets {
		inFlight += l.inFlight.Load()
		_, failingSince := l.breaker.Streak()
		last := l.lastFailure.Load()
		switch st := l.limits.Snapshot(); {
		case l.prov.disabledReason() != "":
		case l.breaker.State() == routing.StateOpen:
			parts = append(parts, fmt.Sprintf("breaker open on %s until %s", l.name(), clock(l.breaker.OpenUntil())))
		case !failingSince.IsZero() && last != nil:
			parts = append(parts, fmt.Sprintf("retrying after %s errors on %s", strings.ReplaceAll(string(last.Type), "_", " "), l.name()))
		case st.DayExhausted:
			parts = append(parts, fmt.Sprintf("daily quota of %s spent until %s", l.name(), clock(st.DayResetAt)))
		case st.Waiting > 0:
			until := st.PausedUntil
			if !until.After(now) {
				perRequest := 1
				if n := l.admitted.Load(); n > 0 {
					perRequest = int(l.admittedTokens.Load() / n)
				}
				until = now.Add(l.limits.Delay(perRequest))
			}
			// Delay is a new request's wait: after every queued one, so the queue is through by then.
			parts = append(parts, fmt.Sprintf("waiting for a rate limit of %s: %d queued until %s", l.name(), st.Waiting, clock(until)))
		}
	}
	if len(parts) == 0 && inFlight > 0 {
		return fmt.Sprintf("waiting for %d requests in flight", inFlight)
	}
	return strings.Join(parts, "; ")
}

// clock is t as hh:mm:ss (rounded up: a wait is not over before it).
func clock(t time.Time) string { return t.Add(time.Second - 1).Format("15:04:05") }

// showFailure warns, at default verbosity, of a request that got no answer at the network level
// (refused, reset, DNS, timeout): the provider, where its requests go and the error. The message
// names the provider, so the logger's fold (progress.FoldHandler) keeps one line per provider per
// window however many prompts hit it. Auth failures disable the provider and say so there.
func (e *engine) showFailure(l *target, c retry.Class) {
	if c.Type != retry.TypeNetwork && c.Type != retry.TypeTimeout {
		return
	}
	e.log.Warn("provider "+l.prov.name+" not answering: "+string(c.Type)+" error", "provider", l.prov.name,
		"address", l.prov.addr, "error", redact.String(c.Message))
}

// showBreaker says when lane l's breaker has opened (after an attempt failed with c) and when it
// has closed again (after a success, c nil): once per change, whatever the number of prompts.
func (e *engine) showBreaker(l *target, c *retry.Class) {
	switch st := l.breaker.State(); {
	case c != nil && st == routing.StateOpen && l.shownOpen.CompareAndSwap(false, true):
		e.log.Warn("breaker opened on "+l.name()+": no requests to it until it answers a trial", "lane", l.name(),
			"trial_at", l.breaker.OpenUntil().Format("15:04:05"), "last_error", string(c.Type))
	case c == nil && st == routing.StateClosed && l.shownOpen.CompareAndSwap(true, false):
		e.log.Info("breaker closed on "+l.name()+": it answers again", "lane", l.name())
	}
}

// leaveForBudget leaves a prompt unsent because its worst case on lane l, est USD, does not fit the
// cost cap beside what is spent; the run goes on with the prompts that fit.
func (e *engine) leaveForBudget(l *target, est float64) {
	e.leftover.add(est)
	e.log.Warn("budget: prompt left unsent, its worst case does not fit what remains of --max-cost",
		"lane", l.name(), "worst_case_usd", money.Round(est), "max_cost_usd", e.opts.MaxCost)
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
	for _, l := range e.targets {
		n := l.admitted.Load()
		if n == 0 {
			continue
		}
		perRequest := float64(l.admittedTokens.Load()) / float64(n)
		e.opts.Summary.SetCeiling(l.prov.name, l.sel.Name, l.limits.Snapshot().Limits.Ceiling(perRequest))
	}
}
