package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/batchplan"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/estimate"
	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// EstimateOptions are the inputs of `llmbatch estimate`.
type EstimateOptions struct {
	IO        *IOStreams
	Getenv    func(string) string
	Config    func() (*config.Config, error) // loads providers.yaml
	Input     string                         // path, or "-" for stdin
	JSON      bool
	Selection SelectionFlags
	MaxCost   float64 // USD; 0 = no budget
	Workers   int     // analysis goroutines; 0 = GOMAXPROCS
	// Output is the job's output file ("" = derived from Input, as run does): results already in it
	// are the best evidence of how long the answers will be.
	Output string
	// Calibrate is a results file of similar prompts, the next best evidence ("" = none).
	Calibrate string
	// Sample is how many prompts --sample sends first (0 = none); their results go to Output.
	Sample int
	// Fresh estimates every prompt, as run --fresh sends them all; without it the prompts Output
	// already answers are left out (a resumed job). Output's results still give the expected output.
	Fresh bool
	// Via is the route as run --via would take it: realtime | batch | auto.
	Via string
	// Transport and Now are the Factory's, for --sample's requests.
	Transport func(p *config.Provider) http.RoundTripper
	Now       func() time.Time
	Cache     CacheFlags
}

// NewCmdEstimate builds the `estimate` command: what a run would cost and how long it would take,
// under the chosen selection policy and the other one.
func NewCmdEstimate(f *Factory) *cobra.Command {
	opts := &EstimateOptions{IO: f.IO, Getenv: f.Getenv, Transport: f.Transport, Now: f.Now}
	c := &cobra.Command{
		Use:   "estimate INPUT.jsonl [-c providers.yaml] [--json]",
		Short: "Estimate tokens, cost and wall time of a batch without sending anything",
		Long: "Validates the whole input, picks a model for every prompt exactly as run would, and prints the\n" +
			"prompts, input tokens (exact or estimated), output tokens, cost per model and in total, and the wall\n" +
			"time under the known rate limits, for the chosen policy and for the other one.\n\n" +
			"Every figure that depends on the answers' length is shown twice: expected, and at most (every\n" +
			"prompt using its whole max_tokens). The expected output comes from results of the same model in the\n" +
			"job's output (-o, as run; a resumed job), else from a results file given with --calibrate, else from\n" +
			"a typical share of max_tokens per category; the table says which. The wall time uses the RPM, TPM,\n" +
			"RPD and concurrency limits that are known and the latency measured in those results; it is marked\n" +
			"a guess only where it rests on an assumed latency.",
		Example: `  llmbatch estimate prompts.jsonl -c providers.yaml
  llmbatch estimate prompts.jsonl --prefer speed --json
  llmbatch estimate prompts.jsonl --deadline 30m --max-cost 10
  llmbatch estimate prompts.jsonl --via auto --deadline 2h    # which lanes go as batch jobs, both prices`,
		Args: exactArgs(1, "INPUT.jsonl"),
	}
	c.RunE = dryRunE(f, &opts.Input, func(ctx context.Context) error { return estimateRun(ctx, opts) })
	opts.Config = configFlag(f, c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object")
	c.Flags().Float64Var(&opts.MaxCost, "max-cost", 0, "warn when the estimated cost exceeds this many USD")
	c.Flags().StringVarP(&opts.Output, "output", "o", "", "the job's output (default INPUT.results.jsonl): its results give the expected output")
	c.Flags().IntVar(&opts.Sample, "sample", 0, "send `N` prompts drawn across the models first, write their results to the output (run will not send them again) and extrapolate from them")
	c.Flags().BoolVar(&opts.Fresh, "fresh", false, "estimate every prompt, as run --fresh sends them all (default: only those the output does not answer yet)")
	c.Flags().StringVar(&opts.Calibrate, "calibrate", "", "results `FILE` of similar prompts to take the expected output and latency from")
	opts.Selection.register(c.Flags())
	registerVia(c.Flags(), &opts.Via)
	opts.Cache.register(c.Flags(), true)
	completeConfig(c)
	completeJSONL(c)
	completeValues(c, "prefer", "cost", "speed")
	completeValues(c, "via", "realtime", "batch", "auto")
	if err := c.MarkFlagFilename("calibrate", "jsonl"); err != nil {
		panic(err)
	}
	if err := c.MarkFlagFilename("output", "jsonl"); err != nil {
		panic(err)
	}
	return c
}

// figuresJSON is the "expected" or "at_most" object of estimate --json (DESIGN §8).
type figuresJSON struct {
	OutputTokens    int64   `json:"output_tokens"`
	CostUSD         float64 `json:"cost_usd"`
	WallTimeSeconds float64 `json:"wall_time_seconds"`
	WallTimeBound   string  `json:"wall_time_bound"` // rpm | tpm | rpd | tpd | concurrency
	WallTimeGuess   bool    `json:"wall_time_guess"` // rests on an assumed latency
}

func figures(f estimate.Figures) figuresJSON {
	return figuresJSON{OutputTokens: f.OutputTokens, CostUSD: money.Round(f.CostUSD), WallTimeSeconds: f.WallTime.Seconds(),
		WallTimeBound: string(f.Bound), WallTimeGuess: f.Guess}
}

// estimateModelJSON is one lane's share of the batch in `estimate --json`.
type estimateModelJSON struct {
	Provider         string  `json:"provider"`
	Model            string  `json:"model"`
	Category         string  `json:"category"`
	Free             bool    `json:"free"`
	Prompts          int64   `json:"prompts"`
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	ExactTokens      bool    `json:"exact_tokens"`
	EstimatedPrompts int64   `json:"estimated_prompts"`
	WallTimeSeconds  float64 `json:"wall_time_seconds"`
	WallTimeBound    string  `json:"wall_time_bound"` // rpm | tpm | rpd | tpd | concurrency
	WallTimeGuess    bool    `json:"wall_time_guess"`
	// OutputTokens, CostUSD and WallTime* above are AtMost's; Expected is the prediction.
	Expected     figuresJSON     `json:"expected"`
	AtMost       figuresJSON     `json:"at_most"`
	ExpectedFrom estimate.Source `json:"expected_from"`
	// Results is how many earlier results the expected output rests on; LatencyResults how many
	// measured the latency (0: an assumed latency).
	Results        int `json:"expected_from_results"`
	LatencyResults int `json:"latency_from_results"`
	// The lane's route under --via; cost and wall time above are at that route.
	laneRouteJSON
}

// estimatePlanJSON is the outcome of one policy.
type estimatePlanJSON struct {
	Prefer           string              `json:"prefer"`
	DeadlineSeconds  float64             `json:"deadline_seconds,omitempty"`
	DeadlineMet      bool                `json:"deadline_met"`
	Prompts          int64               `json:"prompts"`
	InputTokens      int64               `json:"input_tokens"`
	OutputTokens     int64               `json:"output_tokens"`
	CostUSD          float64             `json:"cost_usd"`
	ExactTokens      bool                `json:"exact_tokens"`
	EstimatedPrompts int64               `json:"estimated_prompts"`
	WallTimeSeconds  float64             `json:"wall_time_seconds"`
	WallTimeGuess    bool                `json:"wall_time_guess"`
	Escalated        int64               `json:"escalated"`
	Unassigned       int64               `json:"unassigned"`
	Expected         figuresJSON         `json:"expected"`
	AtMost           figuresJSON         `json:"at_most"`
	ExpectedFrom     estimate.Source     `json:"expected_from"`
	Results          int                 `json:"expected_from_results"`
	Models           []estimateModelJSON `json:"models"`
	// Routes is the split between batch and realtime under --via, and the all-realtime figures.
	Routes *routesJSON `json:"routes"`
}

// estimateJSON is the `estimate --json` object.
type estimateJSON struct {
	Input string `json:"input"`
	estimatePlanJSON
	// Done is how many prompts the job's output already answers (a resumed job): they are not
	// estimated, as run will not send them.
	Done        int              `json:"done"`
	MaxCostUSD  float64          `json:"max_cost_usd,omitempty"`
	OverBudget  bool             `json:"over_budget"`
	Alternative estimatePlanJSON `json:"alternative"`
	Warnings    []string         `json:"warnings"`
	// CacheHits are the prompts the response cache answers (at $0, left out of the figures);
	// CacheSavedUSD what they cost when bought.
	CacheHits     int     `json:"cache_hits"`
	CacheSavedUSD float64 `json:"cache_saved_usd"`
}

func estimateRun(ctx context.Context, opts *EstimateOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	sel, err := opts.Selection.options()
	if err != nil {
		return usageErr(err)
	}
	if opts.Sample < 0 {
		return usageErr(fmt.Errorf("--sample must not be negative (got %d)", opts.Sample))
	}
	if opts.MaxCost < 0 {
		return usageErr(fmt.Errorf("--max-cost must not be negative (got %v)", opts.MaxCost))
	}
	if err := batchplan.CheckVia(opts.Via); err != nil {
		return usageErr(err)
	}
	cacheMode, cacheOpts, err := opts.Cache.options(opts.Getenv, opts.Now)
	if err != nil {
		return usageErr(err)
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	chk, err := batch.Prepare(ctx, batch.PrepareOptions{Config: cfg, Select: sel, Getenv: opts.Getenv,
		Input: opts.Input, Stdin: opts.IO.In, Warn: opts.IO.ErrOut})
	if err != nil {
		return prepared(err)
	}
	defer chk.Close()
	lanes, in := chk.Lanes, chk.Input

	evs, err := readEvidence(opts)
	if err != nil {
		return err
	}
	if opts.Sample > 0 {
		sev, err := runSample(ctx, opts, cfg, sel, chk, estimateOutput(opts), evs[0].HasID)
		if err != nil {
			return err
		}
		evs = append(evs, sev) // after the job's results and --calibrate
	}

	alt := sel
	alt.Prefer = 1 - sel.Prefer
	primary, other := selector.NewPlanner(lanes, sel), selector.NewPlanner(lanes, alt)
	pt, ot := make([]estimate.Tally, len(lanes)), make([]estimate.Tally, len(lanes))
	tally := func(tallies []estimate.Tally, as selector.Assignment, it *selector.Item, reserve int) {
		if as.Lane < 0 {
			return
		}
		l := lanes[as.Lane]
		tallies[as.Lane].Add(as.Input, reserve, it.Category, estimate.First(evs, l.Provider, l.Name).MeanOutput(l.Provider, l.Name))
	}
	var unserved []error
	done := 0
	// Prompts the response cache answers cost nothing and take no time: they are counted apart.
	responses := openCacheSource(opts.Getenv, cacheMode, cacheOpts, pinnedLanes(lanes, sel), func(err error) {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s: %v\n", cacheWarning, err)
	})
	defer responses.Close()
	var hits int
	var saved float64
	err = chk.Analyze(ctx, opts.Workers, func(a *batch.Analyzed) error {
		it := &a.Item
		reserve := it.OutputTokens // at most: max_tokens, else the category's default (tokens.OutputTokens)
		if it.MaxOutputTokens > 0 {
			reserve = it.MaxOutputTokens
		}
		for _, ev := range evs {
			ev.Match(it.ID, reserve)
		}
		// As run: the output's answers first, then the response cache.
		if !opts.Fresh && evs[0].Done(it.ID, a.Req.Hash) {
			done++ // answered in the job's output: run will not send it
			return nil
		}
		if e, hit := responses.Lookup(a.Req); hit {
			hits++
			saved += e.CostUSD
			return nil
		}
		as, err := primary.Add(it)
		if err != nil && len(unserved) < request.MaxReportedErrors {
			unserved = append(unserved, fmt.Errorf("%s:%d: %s", in.Name(), a.Req.Line, err))
		}
		tally(pt, as, it, reserve)
		as, _ = other.Add(it)
		tally(ot, as, it, reserve)
		return nil
	})
	if err != nil {
		return err
	}
	s, as := primary.Summary(), other.Summary()
	routes, err := laneRoutes(cfg, lanes, opts.Via, sel.Deadline, opts.Getenv, estimateOutput(opts))
	if err != nil {
		return err
	}
	// pr, or: every lane through the realtime APIs; pe, oe: at the lanes' routes.
	pr, or := laneEstimates(lanes, pt, evs), laneEstimates(lanes, ot, evs)
	pe, oe := routed(cfg, lanes, pr, pt, routes), routed(cfg, lanes, or, ot, routes)
	ptot, otot := estimate.Total(pe), estimate.Total(oe)

	out := estimateJSON{Input: in.Name(), estimatePlanJSON: planJSON(s, pe, ptot), Alternative: planJSON(as, oe, otot), Done: done,
		MaxCostUSD: money.Round(opts.MaxCost), OverBudget: opts.MaxCost > 0 && ptot.Expected.CostUSD > opts.MaxCost, Warnings: chk.Warnings,
		CacheHits: hits, CacheSavedUSD: money.Round(saved)}
	addRoutes(&out.estimatePlanJSON, s, opts.Via, routes, pe, pr)
	addRoutes(&out.Alternative, as, opts.Via, routes, oe, or)
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	w := bufio.NewWriter(opts.IO.Out)
	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		if done > 0 {
			fmt.Fprintf(w, "%s prompts are already answered in %s: only the %s left are estimated.\n",
				num(int64(done)), estimateOutput(opts), num(s.Prompts))
		}
		printEstimate(w, in.Name(), s, pe, ptot, otot, evs)
		if opts.Via != "" && opts.Via != batchplan.ViaRealtime {
			printRoutes(w, out.estimatePlanJSON)
		}
		if hits > 0 {
			fmt.Fprintf(w, "\n%d prompts are answered from the response cache at $0 (not in the figures above; they cost %s when bought)\n", hits, usd(saved))
		}
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("estimate: write: %w", err)
	}
	switch {
	case out.OverBudget:
		fmt.Fprintf(opts.IO.ErrOut, "warning: the expected cost %s exceeds --max-cost %s: a run with this budget would leave prompts unsent (exit 3)\n",
			usd(ptot.Expected.CostUSD), usd(opts.MaxCost))
	case opts.MaxCost > 0 && ptot.AtMost.CostUSD > opts.MaxCost:
		fmt.Fprintf(opts.IO.ErrOut, "warning: the cost at most %s exceeds --max-cost %s: a run with this budget may leave prompts unsent (exit 3) if the answers are long\n",
			usd(ptot.AtMost.CostUSD), usd(opts.MaxCost))
	}
	if !s.DeadlineMet {
		fmt.Fprintf(opts.IO.ErrOut, "warning: no assignment meets the %s deadline: the best found takes %s\n", s.Deadline, wall(s.WallTime))
	}
	if d := sel.Deadline; d > 0 && out.Routes.Batch.Prompts > 0 && out.Routes.Batch.Expected.WallTimeSeconds > d.Seconds() {
		fmt.Fprintf(opts.IO.ErrOut, "warning: the batch jobs are expected to take %s, past the %s deadline (--via auto sends such models realtime)\n",
			wallSeconds(out.Routes.Batch.Expected.WallTimeSeconds), d)
	}
	return unservedError(s.Unassigned, unserved)
}

// unservedError reports prompts no lane can serve (exit 2), listing the first ones.
func unservedError(n int64, listed []error) error {
	if n == 0 {
		return nil
	}
	lines := make([]string, len(listed))
	for i, e := range listed {
		lines[i] = e.Error()
	}
	if more := n - int64(len(listed)); more > 0 {
		lines = append(lines, fmt.Sprintf("and %d more", more))
	}
	return usageErr(fmt.Errorf("%d prompt(s) cannot be served by any configured model:\n%s", n, strings.Join(lines, "\n")))
}

// estimateOutput is the job's output as run would name it ("" or "-" when there is no file).
func estimateOutput(opts *EstimateOptions) string {
	if opts.Output == "" && opts.Input != "-" {
		return defaultOutput(opts.Input)
	}
	return opts.Output
}

// readEvidence reads what earlier results say about the answers' length and latency, best first:
// the job's output (a resumed job; always the first, possibly empty), then --calibrate.
func readEvidence(opts *EstimateOptions) ([]*estimate.Evidence, error) {
	ev := estimate.NewEvidence(estimate.FromResults)
	if out := estimateOutput(opts); out != "" && out != "-" {
		if err := ev.ReadFile(out, true); err != nil {
			return nil, usageErr(fmt.Errorf("%w (the job's output; pass -o to name another)", err))
		}
	}
	evs := []*estimate.Evidence{ev}
	if opts.Calibrate != "" {
		ev := estimate.NewEvidence(estimate.FromCalibration)
		if err := ev.ReadFile(opts.Calibrate, false); err != nil {
			return nil, usageErr(fmt.Errorf("--calibrate: %w", err))
		}
		if ev.Results() == 0 {
			return nil, usageErr(fmt.Errorf("--calibrate %s: no ok result line to learn from", opts.Calibrate))
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// laneEstimates turns each lane's tally into its figures, from the best evidence about that lane.
func laneEstimates(lanes []*selector.Lane, tallies []estimate.Tally, evs []*estimate.Evidence) []estimate.LaneEstimate {
	out := make([]estimate.LaneEstimate, len(lanes))
	for i, l := range lanes {
		out[i] = tallies[i].Estimate(l, estimate.First(evs, l.Provider, l.Name))
	}
	return out
}

// planJSON is one policy's part of estimate --json: the selector's counts with the estimate's
// figures; the old top-level output, cost and wall time fields are the at-most figures (DESIGN §8).
func planJSON(s selector.Summary, lanes []estimate.LaneEstimate, tot estimate.LaneEstimate) estimatePlanJSON {
	p := estimatePlanJSON{
		Prefer: s.Prefer.String(), DeadlineSeconds: s.Deadline.Seconds(), DeadlineMet: s.DeadlineMet,
		Prompts: s.Prompts, InputTokens: s.InputTokens, OutputTokens: tot.AtMost.OutputTokens, CostUSD: money.Round(tot.AtMost.CostUSD),
		ExactTokens: s.EstimatedPrompts == 0, EstimatedPrompts: s.EstimatedPrompts,
		WallTimeSeconds: tot.AtMost.WallTime.Seconds(), WallTimeGuess: tot.AtMost.Guess,
		Escalated: s.Escalated, Unassigned: s.Unassigned, Models: []estimateModelJSON{},
		Expected: figures(tot.Expected), AtMost: figures(tot.AtMost), ExpectedFrom: tot.From, Results: tot.Results,
	}
	for i, t := range s.Lanes {
		if t.Prompts == 0 {
			continue
		}
		e := lanes[i]
		p.Models = append(p.Models, estimateModelJSON{
			Provider: t.Lane.Provider, Model: t.Lane.Name, Category: t.Lane.Category.String(), Free: t.Lane.Free,
			Prompts: t.Prompts, InputTokens: t.InputTokens, OutputTokens: e.AtMost.OutputTokens, CostUSD: money.Round(e.AtMost.CostUSD),
			ExactTokens: t.EstimatedPrompts == 0, EstimatedPrompts: t.EstimatedPrompts,
			WallTimeSeconds: e.AtMost.WallTime.Seconds(), WallTimeBound: string(e.AtMost.Bound), WallTimeGuess: e.AtMost.Guess,
			Expected: figures(e.Expected), AtMost: figures(e.AtMost), ExpectedFrom: e.From,
			Results: e.Results, LatencyResults: e.LatencyFrom,
		})
	}
	return p
}

// printEstimate writes the human-readable estimate (write errors surface when w is flushed).
func printEstimate(w io.Writer, name string, s selector.Summary, lanes []estimate.LaneEstimate, tot, alt estimate.LaneEstimate,
	evs []*estimate.Evidence) {
	fmt.Fprintf(w, "%s: %s prompts, policy --prefer %s%s\n\n", name, num(s.Prompts), s.Prefer, deadlineNote(s))
	printEstimateTable(w, s, lanes, tot)
	fmt.Fprintln(w)
	if s.EstimatedPrompts > 0 {
		fmt.Fprintf(w, "~ input tokens estimated (no tokenizer for that model) for %s of %s prompts; the rest are exact.\n",
			num(s.EstimatedPrompts), num(s.Prompts-s.Unassigned))
	} else if s.Prompts > 0 {
		fmt.Fprintf(w, "Input tokens are exact counts for every prompt.\n")
	}
	fmt.Fprintf(w, "Expected output: %s.\n", expectedFromNote(tot, evs))
	fmt.Fprintln(w, "At most: every prompt uses its whole max_tokens (or its category's default when it sets none).")
	fmt.Fprintf(w, "Wall time: %s expected, %s at most, models running in parallel under the known limits", wall(tot.Expected.WallTime), wall(tot.AtMost.WallTime))
	switch {
	case tot.Expected.Guess:
		fmt.Fprint(w, " (a guess: the slowest model is bound by its concurrency and an assumed latency; earlier results or --calibrate would measure it)")
	case tot.LatencyFrom > 0:
		fmt.Fprintf(w, " (latency measured on %s earlier results)", num(tot.LatencyFrom))
	}
	fmt.Fprintln(w, ".")
	if s.Escalated > 0 {
		fmt.Fprintf(w, "%s prompt(s) moved up a category because no model of their own could serve them (see select --explain).\n", num(s.Escalated))
	}
	if s.Unassigned > 0 {
		fmt.Fprintf(w, "%s prompt(s) cannot be served by any configured model (listed on stderr).\n", num(s.Unassigned))
	}
	fmt.Fprintf(w, "\nTrade-off: with --prefer %s it would cost %s (at most %s) and take %s", 1-s.Prefer, usd(alt.Expected.CostUSD),
		usd(alt.AtMost.CostUSD), wall(alt.Expected.WallTime))
	if alt.Expected.Guess {
		fmt.Fprint(w, " (guess)")
	}
	fmt.Fprintf(w, " (%s).\n", tradeoff(tot.Expected, alt.Expected))
}

// expectedFromNote says where the expected output comes from, with the counts behind it.
func expectedFromNote(tot estimate.LaneEstimate, evs []*estimate.Evidence) string {
	var parts []string
	for _, ev := range evs {
		if ev.Results() == 0 {
			continue
		}
		switch ev.Source() {
		case estimate.FromSample:
			parts = append(parts, fmt.Sprintf("a %s-prompt sample", num(ev.Results())))
		case estimate.FromCalibration:
			parts = append(parts, fmt.Sprintf("%s results in %s (--calibrate)", num(ev.Results()), strings.Join(ev.Files(), ", ")))
		default:
			parts = append(parts, fmt.Sprintf("%s earlier results in %s", num(ev.Results()), strings.Join(ev.Files(), ", ")))
		}
	}
	switch {
	case tot.From == estimate.FromTypical && tot.Results > 0:
		return fmt.Sprintf("from %s for some models, a typical share of max_tokens per category for the others", strings.Join(parts, " and "))
	case tot.From == estimate.FromTypical:
		return "a typical share of max_tokens per category (no results yet: resume, --calibrate FILE or --sample N measure it)"
	}
	return "from " + strings.Join(parts, " and ")
}

// printEstimateTable writes the per-model figures and the total, expected next to at most.
func printEstimateTable(w io.Writer, s selector.Summary, lanes []estimate.LaneEstimate, tot estimate.LaneEstimate) {
	width := len("PROVIDER/MODEL")
	for _, t := range s.Lanes {
		if t.Prompts > 0 {
			width = max(width, len(t.Lane.String()))
		}
	}
	const row = "%-*s  %-10s  %7s  %10s  %9s  %9s  %10s  %10s  %8s  %8s  %s"
	line := func(args ...any) { fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf(row, args...), " ")) }
	line(width, "", "", "", "", "OUTPUT TOK", "", "COST USD", "", "WALL TIME", "", "")
	line(width, "PROVIDER/MODEL", "CATEGORY", "PROMPTS", "INPUT TOK", "expected", "at most", "expected", "at most", "expected", "at most", "EXPECTED FROM")
	from := func(e estimate.LaneEstimate) string {
		f := "typical ratio"
		if e.From != estimate.FromTypical {
			f = fmt.Sprintf("%s %s", num(e.Results), e.From)
		}
		b := string(e.Expected.Bound)
		if e.Expected.Guess {
			b += " guess"
		}
		return f + ", " + b
	}
	for i, t := range s.Lanes {
		if t.Prompts == 0 {
			continue
		}
		e := lanes[i]
		in := num(t.InputTokens)
		if t.EstimatedPrompts > 0 {
			in = "~" + in
		}
		cat := t.Lane.Category.String()
		if t.Lane.Free {
			cat += "*"
		}
		line(width, t.Lane.String(), cat, num(t.Prompts), in, num(e.Expected.OutputTokens), num(e.AtMost.OutputTokens),
			usd(e.Expected.CostUSD), usd(e.AtMost.CostUSD), wall(e.Expected.WallTime), wall(e.AtMost.WallTime), from(e))
	}
	in := num(s.InputTokens)
	if s.EstimatedPrompts > 0 {
		in = "~" + in
	}
	line(width, "TOTAL", "", num(s.Prompts-s.Unassigned), in, num(tot.Expected.OutputTokens), num(tot.AtMost.OutputTokens),
		usd(tot.Expected.CostUSD), usd(tot.AtMost.CostUSD), wall(tot.Expected.WallTime), wall(tot.AtMost.WallTime), "")
	fmt.Fprintln(w, "(* free tier; EXPECTED FROM: what the expected output rests on, and the limit that sets the expected wall time)")
}

func deadlineNote(s selector.Summary) string {
	if s.Deadline <= 0 {
		return ""
	}
	if s.DeadlineMet {
		return fmt.Sprintf(", --deadline %s (met)", s.Deadline)
	}
	return fmt.Sprintf(", --deadline %s (NOT met)", s.Deadline)
}

// tradeoff compares the alternative policy's expected figures with the chosen one's.
func tradeoff(s, alt estimate.Figures) string {
	var parts []string
	switch {
	case alt.CostUSD > s.CostUSD:
		parts = append(parts, usd(alt.CostUSD-s.CostUSD)+" more")
	case alt.CostUSD < s.CostUSD:
		parts = append(parts, usd(s.CostUSD-alt.CostUSD)+" less")
	default:
		parts = append(parts, "same cost")
	}
	switch {
	case alt.WallTime > 0 && s.WallTime > alt.WallTime:
		parts = append(parts, fmt.Sprintf("%.1f× faster", float64(s.WallTime)/float64(alt.WallTime)))
	case s.WallTime > 0 && alt.WallTime > s.WallTime:
		parts = append(parts, fmt.Sprintf("%.1f× slower", float64(alt.WallTime)/float64(s.WallTime)))
	default:
		parts = append(parts, "same time")
	}
	return strings.Join(parts, ", ")
}

// num formats an integer with thousands separators.
func num[T ~int | ~int64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// usd formats a dollar amount: money.Format, the one money format of every output.
func usd(x float64) string { return money.Format(x) }

// wall formats a wall time for people.
func wall(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return "<1s"
	}
	return d.Round(time.Second).String()
}
