package cmd

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/llmbatch/llmbatch/pkg/analyze"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/redact"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/selector"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

// This file holds what estimate, select and run share: the selection flags, the lanes built from the
// config, the up-front checks (input validation, pins), and the streaming analysis that turns each
// request into a selector.Item with a worker pool while keeping input order.

// SelectionFlags are the selection policy flags of run, select and estimate (DESIGN §1); the zero
// value is the default policy (cost, no deadline, no pins).
type SelectionFlags struct {
	Prefer   string
	Deadline time.Duration
	Model    string
	Provider string
}

// register adds the flags to fs.
func (s *SelectionFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.Prefer, "prefer", "cost", "selection policy: cost (cheapest capable model, free tier first) or speed (share the work across capable models)")
	fs.DurationVar(&s.Deadline, "deadline", 0, "with --prefer cost: add models of the same category until the estimated wall time fits (e.g. 30m)")
	fs.StringVar(&s.Model, "model", "", "send every prompt to this model (overrides the model named in a request)")
	fs.StringVar(&s.Provider, "provider", "", "send every prompt to this provider")
}

// options validates the flags and returns the selector options.
func (s *SelectionFlags) options() (selector.Options, error) {
	p, err := selector.ParsePrefer(s.Prefer)
	if err != nil {
		return selector.Options{}, err
	}
	if s.Deadline < 0 {
		return selector.Options{}, fmt.Errorf("--deadline must not be negative (got %s)", s.Deadline)
	}
	return selector.Options{Prefer: p, Deadline: s.Deadline, PinModel: s.Model, PinProvider: s.Provider}, nil
}

// args returns the flags that reproduce a non-default policy on a command line (for a resume command).
func (s *SelectionFlags) args() []string {
	var out []string
	if p, err := selector.ParsePrefer(s.Prefer); err == nil && p != selector.PreferCost {
		out = append(out, "--prefer "+p.String())
	}
	if s.Deadline > 0 {
		out = append(out, "--deadline "+s.Deadline.String())
	}
	if s.Model != "" {
		out = append(out, "--model "+shellQuote(s.Model))
	}
	if s.Provider != "" {
		out = append(out, "--provider "+shellQuote(s.Provider))
	}
	return out
}

// modelCategory is a configured model's category: the configured one, else derived from its name.
func modelCategory(m *config.Model) model.Category { return model.Of(m.Name, m.Category) }

// modelContext is a configured model's context window: the configured one, else the catalogue's
// (a conservative default for unknown models).
func modelContext(m *config.Model) int { return model.ContextWindow(m.Name, m.ContextWindow) }

// buildLanes returns one lane per configured (provider, model) and a warning for each provider that
// is skipped because its key variable is unset. The lanes of skipped and disabled providers stay in
// the list, unavailable, so that --explain can say why they were not used.
func buildLanes(cfg *config.Config, getenv func(string) string) ([]*selector.Lane, []string) {
	var lanes []*selector.Lane
	warnings := cfg.Warnings() // secrets in the config (masked), then skipped providers
	for _, p := range cfg.Providers {
		unavailable := p.Unavailable(getenv)
		if unavailable != "" && !p.Disabled() { // a disabled provider is the config's choice: no warning
			warnings = append(warnings, fmt.Sprintf("provider %s skipped: %s is not set", p.Name, redact.EnvName(p.APIKeyEnv)))
		}
		for _, m := range p.Models {
			l := selector.NewLane(p, m)
			l.Category = modelCategory(m)
			l.ContextWindow = modelContext(m)
			l.Concurrency = cfg.Defaults.Concurrency
			if p.MaxConcurrency > 0 && p.MaxConcurrency < l.Concurrency {
				l.Concurrency = p.MaxConcurrency
			}
			if unavailable != "" {
				l.Available, l.Unavailable = false, unavailable
			}
			lanes = append(lanes, l)
		}
	}
	return lanes, warnings
}

// pinProblem says why a model/provider pin cannot be served by any lane, or "" when it can.
func pinProblem(lanes []*selector.Lane, pinModel, pinProvider string) string {
	matched := selector.Pinned(lanes, pinModel, pinProvider)
	if len(matched) == 0 {
		switch {
		case pinModel != "" && pinProvider != "":
			return fmt.Sprintf("provider %q has no model %q in the config (see llmbatch models)", pinProvider, pinModel)
		case pinModel != "":
			return fmt.Sprintf("model %q is not in the config (see llmbatch models)", pinModel)
		}
		return fmt.Sprintf("provider %q is not in the config (see llmbatch models)", pinProvider)
	}
	var reasons []string // in first-seen order, each with the lanes it rules out
	lanesOf := map[string][]string{}
	for _, l := range matched {
		if l.Available {
			return ""
		}
		if _, ok := lanesOf[l.Unavailable]; !ok {
			reasons = append(reasons, l.Unavailable)
		}
		lanesOf[l.Unavailable] = append(lanesOf[l.Unavailable], l.String())
	}
	why := make([]string, len(reasons))
	for i, r := range reasons {
		why[i] = strings.Join(lanesOf[r], ", ") + ": " + r
	}
	return "pinned only to unavailable models: " + strings.Join(why, "; ")
}

// checked is a config and an input that passed preflight.
type checked struct {
	lanes    []*selector.Lane
	warnings []string       // providers skipped because their key is unset
	in       *request.Input // the caller closes it
	n        int            // requests in the input
}

// preflight checks everything that can be checked before a request is sent, for run, estimate and
// select alike: the --model and --provider pins against the config and the keys set (warning on
// stderr about providers whose key is unset), then the whole input (every line, and every request's
// own model). Problems come back as one usage error (exit 2) listing each with file:line and field.
func preflight(ctx context.Context, cfg *config.Config, sel selector.Options, getenv func(string) string,
	input string, io *IOStreams) (*checked, error) {
	lanes, warnings := buildLanes(cfg, getenv)
	if err := cfg.CheckKeys(getenv); err != nil { // a key no request can carry: fail before sending
		return nil, usageErr(fmt.Errorf("%s: %w", cfg.Path, err))
	}
	if err := checkGlobalPins(lanes, sel); err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(io.ErrOut, "warning: %s\n", w)
	}
	in, err := request.OpenInput(input, io.In)
	if err != nil {
		return nil, usageErr(err)
	}
	n, errs := prepareInput(ctx, in, lanes, sel)
	if ctx.Err() != nil {
		in.Close()
		return nil, ctx.Err()
	}
	if len(errs) > 0 {
		in.Close()
		return nil, inputErrors(errs)
	}
	return &checked{lanes: lanes, warnings: warnings, in: in, n: n}, nil
}

// checkGlobalPins checks --model and --provider against the lanes before reading any input.
func checkGlobalPins(lanes []*selector.Lane, sel selector.Options) error {
	if sel.PinModel == "" && sel.PinProvider == "" {
		return nil
	}
	if p := pinProblem(lanes, sel.PinModel, sel.PinProvider); p != "" {
		flag := "--model " + sel.PinModel
		if sel.PinModel == "" {
			flag = "--provider " + sel.PinProvider
		}
		return usageErr(fmt.Errorf("%s: %s", flag, p))
	}
	return nil
}

// prepareInput validates the whole input in one pass, checking every request's own model against
// the lanes as it goes. It returns the number of requests and every problem, each naming file:line
// and the field.
func prepareInput(ctx context.Context, in *request.Input, lanes []*selector.Lane, opts selector.Options) (int, []error) {
	r, err := in.Open()
	if err != nil {
		return 0, []error{err}
	}
	defer r.Close()
	v := request.Validator{}
	if opts.PinModel == "" { // --model overrides every request's model: nothing to check per line
		v.Check = requestPinCheck(in.Name(), lanes, opts.PinProvider)
	}
	return v.Validate(ctx, r, in.Name())
}

// requestPinCheck returns a request check that fails when no available lane serves the request's own
// model. It remembers the answer for up to 10,000 distinct models.
func requestPinCheck(name string, lanes []*selector.Lane, pinProvider string) func(*request.Request) error {
	seen := map[string]string{}
	return func(req *request.Request) error {
		if req.Model == "" {
			return nil
		}
		problem, ok := seen[req.Model]
		if !ok {
			problem = pinProblem(lanes, req.Model, pinProvider)
			if len(seen) < 10000 {
				seen[req.Model] = problem
			}
		}
		if problem == "" {
			return nil
		}
		return &request.LineError{File: name, Line: req.Line, Field: "model", Msg: problem}
	}
}

// inputErrors joins problems into one usage error (exit 2).
func inputErrors(errs []error) error {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return usageErr(fmt.Errorf("the input has %d problem(s); nothing was sent:\n%s", len(errs), strings.Join(lines, "\n")))
}

// analyzed is one request after analysis, handed to the consumer in input order.
type analyzed struct {
	Req    *request.Request
	Item   selector.Item
	Reason string // the analyser's explanation of the category
}

// analyzer turns requests into selector items: token counts for each encoding the lanes use, the
// analyser's category (or the request's hint) and the expected output. It is safe for concurrent use.
type analyzer struct {
	encodings []selector.Encoding
	// count returns the request's input tokens under an encoding ("" = estimate) and whether exact;
	// it returns early (inexact) once ctx is done.
	count func(ctx context.Context, req *request.Request, encoding string) (int, bool)
	// profile returns the analyser's category, complexity and reason for a request.
	profile func(req *request.Request, inputTokens int) (model.Category, float64, string)
	// output returns the expected output tokens of a request served at a category.
	output func(req *request.Request, cat model.Category) int
}

// newAnalyzer wires the token calculator and the request analyser for the encodings the lanes use.
func newAnalyzer(lanes []*selector.Lane) *analyzer {
	calc := tokens.New()
	_ = calc.Warm() // on failure counts fall back to an estimate, marked inexact
	return &analyzer{
		encodings: usedEncodings(lanes),
		count:     calc.InputContext,
		profile: func(req *request.Request, in int) (model.Category, float64, string) {
			p := analyze.Analyze(req, in)
			return p.Category, p.Complexity, p.Reason
		},
		output: tokens.OutputTokens,
	}
}

// usedEncodings lists the encodings the lanes need, EncEstimate first when any lane needs it.
func usedEncodings(lanes []*selector.Lane) []selector.Encoding {
	var used [selector.NumEncodings]bool
	for _, l := range lanes {
		used[l.Encoding] = true
	}
	var out []selector.Encoding
	for e, ok := range used {
		if ok {
			out = append(out, selector.Encoding(e))
		}
	}
	return out
}

// item analyses one request.
func (a *analyzer) item(ctx context.Context, req *request.Request, index int) analyzed {
	it := selector.Item{Index: index, ID: req.ID, PinModel: req.Model, MaxOutputTokens: req.MaxTokens}
	ref := 0
	for _, e := range a.encodings {
		n, exact := a.count(ctx, req, e.Name())
		it.InputTokens[e], it.Exact[e] = n, exact
		if ref == 0 || exact {
			ref = n
		}
	}
	cat, complexity, reason := a.profile(req, ref) // the analyser honours the request's category hint
	it.Category, it.Complexity = cat, complexity
	it.OutputTokens = a.output(req, cat)
	return analyzed{Req: req, Item: it, Reason: reason}
}

// analysisSource streams the input's requests with their selector items, analysed in parallel and
// handed over in input order: the prompt source of `run` (a batch.Source).
func analysisSource(in *request.Input, lanes []*selector.Lane) func(ctx context.Context, yield func(*request.Request, selector.Item) error) error {
	an := newAnalyzer(lanes)
	return func(ctx context.Context, yield func(*request.Request, selector.Item) error) error {
		return analyzeInput(ctx, in, an, 0, func(a *analyzed) error { return yield(a.Req, a.Item) })
	}
}

// analysisBatch is a run of consecutive requests analysed by one worker.
type analysisBatch struct {
	first int
	reqs  []*request.Request
	out   []analyzed
	done  chan struct{}
}

// Batches close at this many requests or this much text, bounding memory in flight.
const (
	batchRequests = 64
	batchBytes    = 1 << 20
)

// analyzeInput streams the input, analyses requests on `workers` goroutines (GOMAXPROCS when <= 0)
// and calls fn for each request in input order, never concurrently. Memory stays bounded by a few
// batches per worker. It stops at the first error of reading or of fn, or when ctx is done.
func analyzeInput(ctx context.Context, in *request.Input, a *analyzer, workers int, fn func(*analyzed) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	r, err := in.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	g, ctx := errgroup.WithContext(ctx)
	work := make(chan *analysisBatch, workers)
	order := make(chan *analysisBatch, 2*workers)

	g.Go(func() error { // reader
		defer close(work)
		defer close(order)
		rd := request.NewReader(r, in.Name())
		index := 0
		b := &analysisBatch{done: make(chan struct{})}
		size := 0
		send := func() error {
			for _, ch := range []chan *analysisBatch{order, work} {
				select {
				case ch <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			b, size = &analysisBatch{first: index, done: make(chan struct{})}, 0
			return nil
		}
		for {
			req, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("read input: %w", err)
			}
			b.reqs = append(b.reqs, req)
			index++
			for _, m := range req.Messages {
				size += len(m.Content.Text)
				for _, p := range m.Content.Parts {
					size += len(p.Text) + len(p.Raw)
				}
			}
			if len(b.reqs) >= batchRequests || size >= batchBytes {
				if err := send(); err != nil {
					return err
				}
			}
		}
		if len(b.reqs) > 0 {
			return send()
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for b := range work {
				b.out = make([]analyzed, len(b.reqs))
				for i, req := range b.reqs {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					b.out[i] = a.item(ctx, req, b.first+i)
				}
				close(b.done)
			}
			return nil
		})
	}
	g.Go(func() error { // consumer side: hand results over in order
		for b := range order {
			select {
			case <-b.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			for i := range b.out {
				if err := fn(&b.out[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return g.Wait()
}
