package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/progress"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/adapters"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// RunOptions are the inputs of `llmbatch run`.
type RunOptions struct {
	Factory     *Factory
	Input       string
	Output      string // "" = derived from Input; "-" = stdout
	ConfigPath  string
	Selection   SelectionFlags
	Concurrency int
	MaxCost     float64
	Fresh       bool
	Format      results.Format
	Progress    string // auto | always | never
	Quiet       bool
	LogFormat   string // text | json
	Verbose     bool
	Cache       CacheFlags
}

// NewCmdRun builds the `run` command.
func NewCmdRun(f *Factory) *cobra.Command {
	o := &RunOptions{Factory: f}
	c := &cobra.Command{
		Use:   "run INPUT.jsonl",
		Short: "Send every prompt of INPUT and append one result line per prompt to the output",
		Long: `Run streams INPUT (JSONL; - for stdin), picks the cheapest capable model for each prompt,
spreads the batch across providers within their rate limits, retries and fails over, and appends one
result line per prompt to the output (default: INPUT with .jsonl replaced by .results.jsonl).
An existing output is resumed: prompts with a current ok line are not sent again (--fresh starts over).`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.Input = args[0]
			return runRun(c.Context(), o)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&o.Output, "output", "o", "", "output file (default INPUT.results.jsonl; - = stdout)")
	fl.StringVarP(&o.ConfigPath, "config", "c", "", "providers file (default ./providers.yaml, else $LLMBATCH_CONFIG)")
	o.Selection.register(fl)
	fl.IntVar(&o.Concurrency, "concurrency", 0, "total requests in flight (default: the config's defaults.concurrency)")
	fl.Float64Var(&o.MaxCost, "max-cost", 0, "hard budget in USD: no request is sent that could exceed it")
	fl.BoolVar(&o.Fresh, "fresh", false, "ignore an existing output (it is moved aside, not deleted) and start over")
	fl.Var(&o.Format, "format", "output format: default | openai (OpenAI Batch output lines)")
	fl.StringVar(&o.Progress, "progress", "auto", "progress bar: auto (only on a terminal) | always | never")
	fl.BoolVar(&o.Quiet, "quiet", false, "no progress bar, summary or info logs")
	fl.StringVar(&o.LogFormat, "log-format", "text", "log format on stderr: text | json")
	fl.BoolVarP(&o.Verbose, "verbose", "v", false, "debug logs and the attempt log in each result line")
	o.Cache.register(fl, false)
	return c
}

func runRun(ctx context.Context, o *RunOptions) error {
	f := o.Factory
	if ctx == nil {
		ctx = context.Background()
	}
	logger, err := newLogger(f.IO.ErrOut, o.LogFormat, o.Verbose, o.Quiet)
	if err != nil {
		return usageErr(err)
	}
	if o.Progress != "auto" && o.Progress != "always" && o.Progress != "never" {
		return usageErr(fmt.Errorf("--progress %q: want auto, always or never", o.Progress))
	}
	if o.MaxCost < 0 || o.Concurrency < 0 {
		return usageErr(errors.New("--max-cost and --concurrency must not be negative"))
	}
	cfg, err := f.LoadConfig(o.ConfigPath)
	if err != nil {
		return err
	}
	sel, err := o.Selection.options()
	if err != nil {
		return usageErr(err)
	}
	cacheMode, cacheOpts, err := o.Cache.options(f.Now)
	if err != nil {
		return usageErr(err)
	}
	checkCtx, stopWatching := untilSignal(ctx, f.Signals) // nothing is sent yet: Ctrl-C stops at once
	chk, err := preflight(checkCtx, cfg, sel, f.Getenv, o.Input, f.IO)
	if interrupted := stopWatching(); interrupted || err != nil {
		if chk != nil {
			chk.in.Close()
		}
		if interrupted {
			return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted during the input check; nothing was sent")}
		}
		return err
	}
	defer chk.in.Close()
	apis, err := buildProviders(cfg, o)
	if err != nil {
		return err
	}

	outPath := o.Output
	if outPath == "" {
		outPath = defaultOutput(o.Input)
	}
	out, done, closeOut, err := openOutput(outPath, o, logger)
	if err != nil {
		return err
	}
	responses := openCacheSource(f.Getenv, cacheMode, cacheOpts, chk.lanes, sel, func(err error) { logger.Warn(cacheWarning, "error", err) })
	showBar := !o.Quiet && (o.Progress == "always" || (o.Progress == "auto" && f.IO.ErrIsTerminal))
	display := progress.New(f.IO.ErrOut, chk.n, progress.Options{Enabled: showBar, Now: f.Now})
	summary := progress.NewSummary(f.Now)

	stop := make(chan struct{})
	runCtx, hardStop := context.WithCancel(ctx)
	defer hardStop()
	go watchSignals(runCtx, f.Signals, stop, hardStop, logger)

	opts := batch.Options{
		Config: cfg, Providers: apis, Lanes: chk.lanes, Source: analysisSource(chk.in, chk.lanes), Done: done,
		Output: results.NewWriter(out, o.Format, results.WithClock(f.Now), results.WithName(outPath)),
		Select: sel, Concurrency: o.Concurrency, MaxCost: o.MaxCost, Verbose: o.Verbose, Stop: stop,
		Progress: display, Summary: summary, Logger: logger, Now: f.Now,
	}
	if responses != nil {
		opts.Cache = responses
	}
	rep, runErr := batch.Run(runCtx, opts)
	responses.Close() // flushes the answers bought; a failure is only warned about
	display.Finish()
	if cerr := closeOut(); cerr != nil && runErr == nil {
		runErr = fmt.Errorf("closing %s: %w", outPath, cerr)
	}
	if outPath != "-" && rep != nil && !errors.Is(runErr, batch.ErrWrite) {
		// Superseded lines (an earlier error, an answer to a since-changed prompt) go, so readers see
		// exactly one line per id.
		if removed, err := results.Compact(outPath, o.Format, func(string) bool { return true }); err != nil {
			logger.Warn("could not compact the output; it still holds every result", "file", outPath, "error", err)
		} else if removed > 0 {
			logger.Info("compacted the output", "file", outPath, "superseded_lines_removed", removed)
		}
	}
	if rep != nil && !o.Quiet {
		summary.Render(f.IO.ErrOut)
		fmt.Fprintf(f.IO.ErrOut, "%d prompts: %d ok, %d failed, %d skipped (already done), %d remaining; cost $%.4f; %s\n",
			rep.Prompts, rep.OK, rep.Failed, rep.Skipped, rep.Remaining, rep.CostUSD, rep.Elapsed.Round(time.Millisecond))
		if hits, saved := responses.Hits(); hits > 0 {
			fmt.Fprintf(f.IO.ErrOut, "%d answered from the response cache at no cost (they cost %s when bought)\n", hits, usd(saved))
		}
	}
	return runExit(rep, runErr, o, outPath)
}

// runExit maps a run's outcome to the exit code of DESIGN §1.
func runExit(rep *batch.Report, err error, o *RunOptions, outPath string) error {
	f := o.Factory
	switch {
	case rep != nil && (rep.Interrupted || errors.Is(err, context.Canceled)):
		fmt.Fprintf(f.IO.ErrOut, "interrupted: %d prompts remain. Resume with:\n  %s\n", rep.Remaining, resumeCommand(o, outPath))
		return &ExitError{Code: ExitInterrupted}
	case err != nil:
		return &ExitError{Code: ExitPartial, Err: err}
	case rep.Budget:
		return &ExitError{Code: ExitBudget, Err: fmt.Errorf("budget of $%.4f reached: %d prompts remain (raise --max-cost and run the same command to continue)", o.MaxCost, rep.Remaining)}
	case rep.Failed > 0:
		return &ExitError{Code: ExitPartial, Err: fmt.Errorf("%d of %d prompts ended in error; their error lines are in %s (run the same command again to retry them)", rep.Failed, rep.Prompts-rep.Skipped, outPath)}
	}
	return nil
}

// resumeCommand is the command line that continues an interrupted run.
func resumeCommand(o *RunOptions, outPath string) string {
	args := []string{"llmbatch", "run", shellQuote(o.Input)}
	if outPath != defaultOutput(o.Input) {
		args = append(args, "-o", shellQuote(outPath))
	}
	if o.ConfigPath != "" {
		args = append(args, "-c", shellQuote(o.ConfigPath))
	}
	args = append(args, o.Selection.args()...)
	if o.MaxCost > 0 {
		args = append(args, fmt.Sprintf("--max-cost %g", o.MaxCost))
	}
	if o.Concurrency > 0 {
		args = append(args, fmt.Sprintf("--concurrency %d", o.Concurrency))
	}
	if o.Format != results.FormatDefault {
		args = append(args, "--format "+o.Format.String())
	}
	if o.Cache.Mode != "" && o.Cache.Mode != "on" {
		args = append(args, "--cache "+o.Cache.Mode)
	}
	return strings.Join(args, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r == '=' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// defaultOutput is INPUT with .jsonl replaced by .results.jsonl; stdin's results go to stdout.
func defaultOutput(input string) string {
	if input == "-" {
		return "-"
	}
	return strings.TrimSuffix(input, ".jsonl") + ".results.jsonl"
}

// openOutput prepares the output for appending: resumed (torn last line repaired) or, with --fresh,
// started over after moving the old file aside. done reports prompts that need no new request.
func openOutput(path string, o *RunOptions, logger *slog.Logger) (w io.Writer, done func(id, hash string) bool, closeFn func() error, err error) {
	if path == "-" {
		return o.Factory.IO.Out, nil, func() error { return nil }, nil
	}
	if o.Fresh {
		moved, err := results.MoveAside(path, o.Factory.Now())
		if err != nil {
			return nil, nil, nil, usageErr(err)
		}
		if moved != "" {
			logger.Info("--fresh: moved the previous output aside", "from", path, "to", moved)
		}
	} else {
		cp, err := results.Scan(path, o.Format)
		if err != nil {
			return nil, nil, nil, usageErr(fmt.Errorf("%w (fix or move the file, or pass --fresh to start over)", err))
		}
		if cp.Lines > 0 {
			logger.Info("resuming from the existing output", "file", path, "ok_lines", cp.OKLines, "error_lines", cp.ErrorLines,
				"torn_line_repaired", cp.TornLine > 0)
		}
		done = cp.Done
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, nil, usageErr(fmt.Errorf("output directory: %w", err))
	}
	open := func(path string) (io.WriteCloser, error) { return results.OpenAppend(path) }
	if o.Factory.OpenOutput != nil {
		open = o.Factory.OpenOutput
	}
	file, err := open(path)
	if err != nil {
		return nil, nil, nil, usageErr(err)
	}
	return file, done, func() error {
		if s, ok := file.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				file.Close()
				return err
			}
		}
		return file.Close()
	}, nil
}

// watchSignals turns the first interrupt into a graceful stop and the second into an immediate one.
func watchSignals(ctx context.Context, sigs <-chan os.Signal, stop chan<- struct{}, hard context.CancelFunc, logger *slog.Logger) {
	if sigs == nil {
		return
	}
	select {
	case <-ctx.Done():
		return
	case s := <-sigs:
		logger.Warn("stopping: no new requests; waiting for those in flight (press Ctrl-C again to stop at once)", "signal", s.String())
		close(stop)
	}
	select {
	case <-ctx.Done():
	case <-sigs:
		hard()
	}
}

// newLogger builds the stderr logger for --log-format, -v and --quiet.
func newLogger(w io.Writer, format string, verbose, quiet bool) (*slog.Logger, error) {
	level := slog.LevelInfo
	switch {
	case verbose:
		level = slog.LevelDebug
	case quiet:
		level = slog.LevelWarn
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// buildProviders creates one adapter per usable provider. Providers whose key variable is unset are
// skipped with a warning; `type: sim` providers get an in-process simulator.
func buildProviders(cfg *config.Config, o *RunOptions) (map[string]provider.Provider, error) {
	f := o.Factory
	apis := map[string]provider.Provider{}
	conc := o.Concurrency
	if conc <= 0 {
		conc = cfg.Defaults.Concurrency
	}
	for _, p := range cfg.Providers {
		if !p.Available(f.Getenv) {
			continue // preflight warned about it
		}
		var transport http.RoundTripper
		if f.Transport != nil {
			transport = f.Transport(p)
		}
		if transport == nil && p.Type == config.TypeSim {
			transport = sim.NewProvider(p, sim.Options{Now: f.Now}).Transport()
		}
		maxConns := conc
		if p.MaxConcurrency > 0 {
			maxConns = min(conc, p.MaxConcurrency)
		}
		api, err := adapters.New(p, adapters.NewHTTPClient(maxConns, transport), f.Getenv, adapters.WithNow(f.Now))
		if err != nil {
			return nil, usageErr(fmt.Errorf("%s: %w", cfg.Path, err))
		}
		apis[p.Name] = api
	}
	if len(apis) == 0 {
		return nil, usageErr(fmt.Errorf("%s: no provider can be used: set the API key variable of at least one provider (see `llmbatch models`)", cfg.Path))
	}
	return apis, nil
}
