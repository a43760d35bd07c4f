package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/redact"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// This file is the preparation that run, estimate and select share: the candidate routes built
// from the config, the up-front checks (pins, keys, the whole input) and the streaming analysis.

// UsageError is a usage, config or input problem found before anything was sent (exit 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// usageErr marks err as a UsageError.
func usageErr(err error) error { return &UsageError{Err: err} }

// ErrInterrupted is returned when a stop came while the input was being checked: nothing was sent.
var ErrInterrupted = errors.New("interrupted during the input check; nothing was sent")

// PrepareOptions are the inputs of Prepare.
type PrepareOptions struct {
	Config *config.Config
	Select selector.Options
	Getenv func(string) string // reads API key variables; nil = every variable unset
	Input  string              // path, or "-" for Stdin
	Stdin  io.Reader
	// Warn receives one "warning: ..." line per provider skipped because its key is unset; nil = none.
	Warn io.Writer
	// Done, when set, reports prompts that already have a current result (run's resume); the
	// validation pass counts them into Prepared.Done, so progress can start there.
	Done func(id, hash string) bool
	// Shard, when set, keeps only the prompts of one shard (the whole input is still validated).
	Shard request.Shard
}

// Prepared is a config and an input that passed every check: the selector's routes and an input
// that can be streamed (analysed) as often as needed. Close releases the input.
type Prepared struct {
	Lanes    []*selector.Lane // one per configured (provider, model); unusable ones marked so, for --explain
	Warnings []string         // providers skipped because their key is unset
	Input    *request.Input
	Prompts  int // requests in the input (in the shard, with one)
	Done     int // of them, those PrepareOptions.Done reports done
	Shard    request.Shard
}

// Close releases the input (a spooled stdin copy).
func (p *Prepared) Close() error { return p.Input.Close() }

// Prepare checks everything that can be checked before a request is sent, for run, estimate and
// select alike: the pins against the config and the keys set (warning about providers whose key is
// unset), then the whole input (every line, and every request's own model). Problems come back as
// one *UsageError listing each with file:line and field; ctx's error when ctx ends first.
func Prepare(ctx context.Context, o PrepareOptions) (*Prepared, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	routes, warnings := SelectorLanes(o.Config, getenv)
	if err := o.Config.CheckKeys(getenv); err != nil { // a key no request can carry: fail before sending
		return nil, usageErr(fmt.Errorf("%s: %w", o.Config.Path, err))
	}
	if err := checkGlobalPins(routes, o.Select); err != nil {
		return nil, err
	}
	if o.Warn != nil {
		for _, w := range warnings {
			fmt.Fprintf(o.Warn, "warning: %s\n", w)
		}
	}
	in, err := request.OpenInput(o.Input, o.Stdin)
	if err != nil {
		return nil, usageErr(err)
	}
	done, inShard := 0, 0
	count := func(req *request.Request) {
		if !o.Shard.Has(req.ID) {
			return
		}
		inShard++
		if o.Done != nil && o.Done(req.ID, req.Hash) {
			done++
		}
	}
	n, errs := validateInput(ctx, in, routes, o.Select, count)
	if o.Shard.N > 1 {
		n = inShard
	}
	if ctx.Err() != nil {
		in.Close()
		return nil, ctx.Err()
	}
	if len(errs) > 0 {
		in.Close()
		return nil, inputErrors(errs)
	}
	return &Prepared{Lanes: routes, Warnings: warnings, Input: in, Prompts: n, Done: done, Shard: o.Shard}, nil
}

// SelectorLanes returns the selector's view of every configured (provider, model) and a warning for each
// provider skipped because its key variable is unset. The routes of skipped and disabled providers
// stay in the list, unavailable, so that --explain can say why they were not used.
func SelectorLanes(cfg *config.Config, getenv func(string) string) ([]*selector.Lane, []string) {
	var routes []*selector.Lane
	warnings := cfg.Warnings() // secrets in the config (masked), then skipped providers
	for _, p := range cfg.Providers {
		unavailable := p.Unavailable(getenv)
		if unavailable != "" && !p.Disabled() { // a disabled provider is the config's choice: no warning
			warnings = append(warnings, fmt.Sprintf("provider %s skipped: %s is not set", p.Name, redact.EnvName(p.APIKeyEnv)))
		}
		for _, m := range p.Models {
			l := selector.NewLane(p, m)
			l.Category = model.Of(m.Name, m.Category)
			l.ContextWindow = model.ContextWindow(m.Name, m.ContextWindow)
			l.Concurrency = cfg.Defaults.Concurrency
			if p.MaxConcurrency > 0 && p.MaxConcurrency < l.Concurrency {
				l.Concurrency = p.MaxConcurrency
			}
			if unavailable != "" {
				l.Available, l.Unavailable = false, unavailable
			}
			routes = append(routes, l)
		}
	}
	return routes, warnings
}

// pinProblem says why a model/provider pin cannot be served by any route, or "" when it can.
func pinProblem(routes []*selector.Lane, pinModel, pinProvider string) string {
	matched := selector.Pinned(routes, pinModel, pinProvider)
	if len(matched) == 0 {
		switch {
		case pinModel != "" && pinProvider != "":
			return fmt.Sprintf("provider %q has no model %q in the config (see llmbatch models)", pinProvider, pinModel)
		case pinModel != "":
			return fmt.Sprintf("model %q is not in the config (see llmbatch models)", pinModel)
		}
		return fmt.Sprintf("provider %q is not in the config (see llmbatch models)", pinProvider)
	}
	var reasons []string // in first-seen order, each with the routes it rules out
	routesOf := map[string][]string{}
	for _, l := range matched {
		if l.Available {
			return ""
		}
		if _, ok := routesOf[l.Unavailable]; !ok {
			reasons = append(reasons, l.Unavailable)
		}
		routesOf[l.Unavailable] = append(routesOf[l.Unavailable], l.String())
	}
	why := make([]string, len(reasons))
	for i, r := range reasons {
		why[i] = strings.Join(routesOf[r], ", ") + ": " + r
	}
	return "pinned only to unavailable models: " + strings.Join(why, "; ")
}

// checkGlobalPins checks --model and --provider against the routes before reading any input.
func checkGlobalPins(routes []*selector.Lane, sel selector.Options) error {
	if sel.PinModel == "" && sel.PinProvider == "" {
		return nil
	}
	if p := pinProblem(routes, sel.PinModel, sel.PinProvider); p != "" {
		flag := "--model " + sel.PinModel
		if sel.PinModel == "" {
			flag = "--provider " + sel.PinProvider
		}
		return usageErr(fmt.Errorf("%s: %s", flag, p))
	}
	return nil
}

// validateInput validates the whole input in one pass, checking every request's own model against
// the routes as it goes. It returns the number of requests and every problem, each naming file:line
// and the field.
func validateInput(ctx context.Context, in *request.Input, routes []*selector.Lane, opts selector.Options,
	each func(*request.Request)) (int, []error) {
	r, err := in.Open()
	if err != nil {
		return 0, []error{err}
	}
	defer r.Close()
	var pin func(*request.Request) error
	if opts.PinModel == "" { // --model overrides every request's model: nothing to check per line
		pin = requestPinCheck(in.Name(), routes, opts.PinProvider)
	}
	v := request.Validator{Check: func(req *request.Request) error {
		each(req)
		if pin != nil {
			return pin(req)
		}
		return nil
	}}
	return v.Validate(ctx, r, in.Name())
}

// requestPinCheck returns a request check that fails when no available route serves the request's
// own model. It remembers the answer for up to 10,000 distinct models.
func requestPinCheck(name string, routes []*selector.Lane, pinProvider string) func(*request.Request) error {
	seen := map[string]string{}
	return func(req *request.Request) error {
		if req.Model == "" {
			return nil
		}
		problem, ok := seen[req.Model]
		if !ok {
			problem = pinProblem(routes, req.Model, pinProvider)
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

// inputErrors joins problems into one UsageError.
func inputErrors(errs []error) error {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return usageErr(fmt.Errorf("the input has %d problem(s); nothing was sent:\n%s", len(errs), strings.Join(lines, "\n")))
}
