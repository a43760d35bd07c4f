package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/cache"
	"github.com/llmbatch/llmbatch/pkg/metrics"
	"github.com/llmbatch/llmbatch/pkg/progress"
	"github.com/llmbatch/llmbatch/pkg/redact"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/shared"
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
	Via         string // realtime | batch | auto
	Shared      string // --shared Redis URL ("" = config shared.url, else $LLMBATCH_REDIS_URL, else none)
	Shard       string // --shard i/n
	Job         string // --job NAME: the shared budget's name (default the output's file name)
	Cache       CacheFlags
	MetricsAddr string // HOST:PORT to serve Prometheus metrics at /metrics during the run; "" = none

	responses *cache.Source // the run's response cache, once batch.Run opened it; nil = none
}

// NewCmdRun builds the `run` command. runF, when set, receives the parsed options instead of
// runRun (tests check flag parsing apart from the run); nil runs the batch.
func NewCmdRun(f *Factory, runF func(context.Context, *RunOptions) error) *cobra.Command {
	o := &RunOptions{Factory: f}
	c := &cobra.Command{
		Use:   "run INPUT.jsonl",
		Short: "Send every prompt of INPUT and append one result line per prompt to the output",
		Long: `Run streams INPUT (JSONL; - for stdin), picks the cheapest capable model for each prompt,
spreads the batch across providers within their rate limits, retries and fails over, and appends one
result line per prompt to the output (default: INPUT with .jsonl replaced by .results.jsonl).
An existing output is resumed: prompts with a current ok line are not sent again (--fresh starts over).`,
		Example: `  llmbatch run prompts.jsonl -c providers.yaml
  llmbatch run prompts.jsonl -o results.jsonl --max-cost 5 --prefer speed
  cat prompts.jsonl | llmbatch run - -o - --progress never > results.jsonl
  llmbatch run prompts.jsonl --model gpt-4o-mini --format openai
  llmbatch run prompts.jsonl --via batch            # provider batch jobs: half price, within 24h
  llmbatch run prompts.jsonl --via auto --deadline 2h
  llmbatch run prompts.jsonl --shared redis://127.0.0.1:6379/0 --shard 1/3 -o part1.jsonl`,
		Args: exactArgs(1, "INPUT.jsonl"),
		RunE: func(c *cobra.Command, args []string) error {
			o.Input = args[0]
			o.Verbose = f.Verbose
			if runF != nil {
				return runF(c.Context(), o)
			}
			return runRun(c.Context(), o)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&o.Output, "output", "o", "", "output file (default INPUT.results.jsonl; - = stdout)")
	fl.StringVarP(&o.ConfigPath, "config", "c", "", "providers file (default ./providers.yaml, else $LLMBATCH_CONFIG)")
	o.Selection.register(fl)
	fl.IntVar(&o.Concurrency, "concurrency", 0, "total requests in flight (default: the config's defaults.concurrency)")
	fl.Float64Var(&o.MaxCost, "max-cost", 0, "hard budget of the job in USD (spend recorded in the output counts): no request is sent that could exceed it; prompts that cannot fit are left unsent (exit 3)")
	fl.StringVar(&o.Via, "via", batch.ViaRealtime, "route: realtime | batch (provider batch jobs where the provider has batch: enabled, half price, within 24h) | auto (batch where its turnaround fits --deadline)")
	fl.BoolVar(&o.Fresh, "fresh", false, "ignore an existing output (it is moved aside, not deleted) and start over")
	fl.Var(&o.Format, "format", "result line format, `default|openai`: default writes llmbatch's result lines, openai the OpenAI Batch output lines")
	fl.Lookup("format").DefValue = "" // "(default default)" says nothing
	fl.StringVar(&o.Progress, "progress", "auto", "progress bar, `auto|always|never`: auto draws it only when stderr is a terminal")
	fl.BoolVar(&o.Quiet, "quiet", false, "no progress bar, summary or info logs")
	fl.StringVar(&o.LogFormat, "log-format", "text", "log format on stderr, `text|json`")
	o.Cache.register(fl, false)
	fl.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics during the run (port 0 picks a free one; the address is logged)")
	fl.StringVar(&o.Shared, "shared", "", "share rate limits, learned limits, pauses and the --max-cost budget with other processes through this Redis, `redis://host:6379/0` (rediss:// for TLS; default: config shared.url, else $LLMBATCH_REDIS_URL)")
	fl.StringVar(&o.Shard, "shard", "", "take only shard `i/n` of the prompts (1-based, by id hash): --shard 1/3 … --shard 3/3")
	fl.StringVar(&o.Job, "job", "", "the job's `NAME` for the shared --max-cost budget (default: the output's file name)")
	completeConfig(c)
	completeJSONL(c)
	completeValues(c, "format", "default", "openai")
	completeValues(c, "progress", "auto", "always", "never")
	completeValues(c, "log-format", "text", "json")
	completeValues(c, "prefer", "cost", "speed")
	return c
}

// runOptions checks the flags and turns them into the batch's options (without Stop).
func runOptions(o *RunOptions) (batch.Options, error) {
	f := o.Factory
	sink := &logSink{w: f.IO.ErrOut}
	logger, err := newLogger(sink, o.LogFormat, o.Verbose, o.Quiet, f.Now)
	if err != nil {
		return batch.Options{}, usageErr(err)
	}
	if o.Progress != "auto" && o.Progress != "always" && o.Progress != "never" {
		return batch.Options{}, usageErr(fmt.Errorf("--progress %q: want auto, always or never", o.Progress))
	}
	if o.MaxCost < 0 || o.Concurrency < 0 {
		return batch.Options{}, usageErr(errors.New("--max-cost and --concurrency must not be negative"))
	}
	switch o.Via {
	case batch.ViaRealtime, batch.ViaBatch, batch.ViaAuto:
	default:
		return batch.Options{}, usageErr(fmt.Errorf("--via %q: want realtime, batch or auto", o.Via))
	}
	cfg, err := f.LoadConfig(o.ConfigPath)
	if err != nil {
		return batch.Options{}, err
	}
	sel, err := o.Selection.options()
	if err != nil {
		return batch.Options{}, usageErr(err)
	}
	cacheMode, cacheOpts, err := o.Cache.options(f.Getenv, f.Now)
	if err != nil {
		return batch.Options{}, usageErr(err)
	}
	outPath := o.Output
	if outPath == "" {
		outPath = defaultOutput(o.Input)
	}
	shard, err := request.ParseShard(o.Shard)
	if err != nil {
		return batch.Options{}, usageErr(err)
	}
	showBar := !o.Quiet && (o.Progress == "always" || (o.Progress == "auto" && f.IO.ErrIsTerminal))
	return batch.Options{
		Shard:  shard,
		Config: cfg, Select: sel, Getenv: f.Getenv, Input: o.Input, Stdin: f.IO.In,
		Output: outPath, Stdout: f.IO.Out, Fresh: o.Fresh, Format: o.Format,
		Concurrency: o.Concurrency, MaxCost: o.MaxCost, Verbose: o.Verbose, Via: o.Via,
		Transport: f.Transport, OpenOutput: f.OpenOutput, Warn: f.IO.ErrOut,
		Progress: func(n, done int) *progress.Display {
			d := progress.New(f.IO.ErrOut, n, progress.Options{Enabled: showBar, Now: f.Now, Done: done, Width: f.IO.ErrWidth})
			sink.attach(d)
			return d
		},
		Summary: progress.NewSummary(f.Now), Logger: logger, Now: f.Now,
		Cache: func(lanes []string) batch.ResponseCache {
			o.responses = openCacheSource(f.Getenv, cacheMode, cacheOpts, lanes, func(err error) { logger.Warn(cacheWarning, "error", err) })
			if o.responses == nil {
				return nil // a nil *cache.Source in the interface would not read as "no cache"
			}
			return o.responses
		},
	}, nil
}

func runRun(ctx context.Context, o *RunOptions) error {
	f := o.Factory
	if ctx == nil {
		ctx = context.Background()
	}
	bo, err := runOptions(o)
	if err != nil {
		return err
	}
	closeShared, err := joinShared(ctx, o, &bo)
	if err != nil {
		return err
	}
	defer closeShared()
	stop := make(chan struct{})
	runCtx, hardStop := context.WithCancel(ctx)
	defer hardStop()
	select { // a signal already pending stops the run before its checks, whatever the watcher's timing
	case sig := <-f.Signals:
		bo.Logger.Warn("stopping before anything is sent", "signal", sig.String())
		close(stop)
	default:
	}
	go watchSignals(runCtx, f.Signals, stop, hardStop, bo.Logger)
	bo.Stop = stop
	if o.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(o.MetricsAddr, &bo, bo.Logger)
		if err != nil {
			return usageErr(err)
		}
		defer stopMetrics()
	}

	rep, runErr := batch.Run(runCtx, bo)
	o.responses.Close() // flushes the answers bought; a failure is only warned about
	bo.Summary.Finish()
	// The "…and N more" of warnings still folded, above the summary.
	if fold, ok := bo.Logger.Handler().(*progress.FoldHandler); ok {
		_ = fold.Flush(context.Background())
	}
	if rep != nil && rep.Prompts == 0 && runErr == nil {
		// Nothing to do is not an error; batch.Run created no output for it.
		name := o.Input
		if name == "-" {
			name = "stdin"
		}
		fmt.Fprintf(f.IO.ErrOut, "no prompts in %s\n", name)
		return nil
	}
	if rep != nil && !o.Quiet {
		_ = bo.Summary.RenderWidth(f.IO.ErrOut, termWidth(f.IO))
		fmt.Fprintf(f.IO.ErrOut, "%d prompts: %d ok, %d failed, %d skipped (already done), %d remaining; cost %s\n",
			rep.Prompts, rep.OK, rep.Failed, rep.Skipped, rep.Remaining, usd(rep.CostUSD))
		if hits, saved := o.responses.Hits(); hits > 0 {
			fmt.Fprintf(f.IO.ErrOut, "%d answered from the response cache at no cost (they cost %s when bought)\n", hits, usd(saved))
		}
	}
	return runExit(rep, runErr, o, bo.Output)
}

// serveMetrics listens on addr and serves the run's Prometheus metrics at /metrics until stop is
// called; it makes the metrics bo's Observer.
func serveMetrics(addr string, bo *batch.Options, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	m := metrics.New()
	bo.Observer = m
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // returns http.ErrServerClosed at Shutdown
	logger.Info("serving Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // a scrape still running gets two seconds
	}, nil
}

// runExit maps a run's outcome to the exit code of DESIGN §1.
func runExit(rep *batch.Report, err error, o *RunOptions, outPath string) error {
	f := o.Factory
	var ue *batch.UsageError
	switch {
	case errors.As(err, &ue):
		return prepared(err)
	case errors.Is(err, batch.ErrInterrupted):
		return &ExitError{Code: ExitInterrupted, Err: err}
	case rep != nil && (rep.Interrupted || errors.Is(err, context.Canceled)):
		fmt.Fprintf(f.IO.ErrOut, "interrupted: %d prompts remain. Resume with:\n  %s\n", rep.Remaining, resumeCommand(o, outPath))
		return &ExitError{Code: ExitInterrupted}
	case err != nil:
		return &ExitError{Code: ExitPartial, Err: err}
	case rep.Budget:
		return &ExitError{Code: ExitBudget, Err: budgetError(rep, o.MaxCost)}
	case rep.Failed > 0:
		return &ExitError{Code: ExitPartial, Err: fmt.Errorf("%d of %d prompts ended in error; their error lines are in %s (run the same command again to retry them)", rep.Failed, rep.Prompts-rep.Skipped, outPath)}
	}
	return nil
}

// budgetError says how many prompts the budget left unsent, their worst-case cost together (and
// the least of them, against what remains of the cap) and the cap that lets them all run: the
// job's spend so far plus that worst case, rounded up to a cent.
func budgetError(rep *batch.Report, maxCost float64) error {
	spent := rep.PriorCostUSD + rep.CostUSD
	need := math.Ceil((spent+rep.BudgetLeftUSD)*100) / 100
	earlier := ""
	if rep.PriorCostUSD > 0 {
		earlier = fmt.Sprintf(", %s of it by earlier runs", usd(rep.PriorCostUSD))
	}
	return fmt.Errorf("budget of %s reached: %d prompts remain, left unsent because the worst case of each (%s together, the least %s) does not fit the %s left beside the %s this job spent%s; --max-cost %.2f lets them all run (run the same command with it to continue)",
		usd(maxCost), rep.BudgetLeft, usd(rep.BudgetLeftUSD), usd(rep.BudgetLeastUSD), usd(max(maxCost-spent, 0)), usd(spent), earlier, need)
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
	if o.Cache.Mode != "" && o.Cache.Mode != "on" {
		args = append(args, "--cache "+o.Cache.Mode)
	}
	if o.Format != results.FormatDefault {
		args = append(args, "--format "+o.Format.String())
	}
	if o.Via != "" && o.Via != batch.ViaRealtime {
		args = append(args, "--via "+o.Via)
	}
	if o.Shared != "" {
		args = append(args, "--shared", shellQuote(shared.Redact(o.Shared)))
	}
	if o.Shard != "" {
		args = append(args, "--shard", shellQuote(o.Shard))
	}
	if o.Job != "" {
		args = append(args, "--job", shellQuote(o.Job))
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

// watchSignals turns the first interrupt into a graceful stop and the second into an immediate one.
func watchSignals(ctx context.Context, sigs <-chan os.Signal, stop chan struct{}, hard context.CancelFunc, logger *slog.Logger) {
	if sigs == nil {
		return
	}
	select {
	case <-stop: // stopped already by a pending signal
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

// logSink is where a run's logs go: stderr, through the progress display once there is one, so a
// log line clears the bar's line, is written whole and the bar is drawn again below it.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
	d  *progress.Display
}

func (s *logSink) attach(d *progress.Display) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = d
}

// Write writes one log record (slog handlers make one Write per record).
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	d := s.d
	s.mu.Unlock()
	if d != nil {
		return d.Write(p)
	}
	return s.w.Write(p)
}

// newLogger builds the stderr logger for --log-format, -v and --quiet: text or JSON records on w,
// with repeated identical warnings folded (a progress.FoldHandler; now is time.Now when nil).
func newLogger(w io.Writer, format string, verbose, quiet bool, now func() time.Time) (*slog.Logger, error) {
	level := slog.LevelInfo
	switch {
	case verbose:
		level = slog.LevelDebug
	case quiet:
		level = slog.LevelWarn
	}
	hopts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	switch format {
	case "", "text":
		return slog.New(progress.NewFoldHandler(slog.NewTextHandler(w, hopts), now, 0)), nil
	case "json":
		return slog.New(progress.NewFoldHandler(slog.NewJSONHandler(w, hopts), now, 0)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// redactAttr masks URL credentials in every logged message, string and error (a provider's error
// quotes the URL it called, base_url included).
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value.Any().(type) {
	case string:
		a.Value = slog.StringValue(redact.String(v))
	case error:
		a.Value = slog.StringValue(redact.String(v.Error()))
	case fmt.Stringer:
		if a.Value.Kind() == slog.KindAny {
			a.Value = slog.StringValue(redact.String(v.String()))
		}
	}
	return a
}
