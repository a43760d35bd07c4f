package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/config"
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
	Cache     CacheFlags
	Now       func() time.Time
}

// NewCmdEstimate builds the `estimate` command: what a run would cost and how long it would take,
// under the chosen selection policy and the other one.
func NewCmdEstimate(f *Factory) *cobra.Command {
	opts := &EstimateOptions{IO: f.IO, Getenv: f.Getenv, Now: f.Now}
	c := &cobra.Command{
		Use:   "estimate INPUT.jsonl [-c providers.yaml] [--json]",
		Short: "Estimate tokens, cost and wall time of a batch without sending anything",
		Long: "Validates the whole input, picks a model for every prompt exactly as run would, and prints the\n" +
			"prompts, input tokens (exact or estimated), expected output tokens, cost per model and in total,\n" +
			"and the wall time under the configured rate limits, for the chosen policy and for the other one.",
		Args: cobra.ExactArgs(1),
	}
	c.RunE = dryRunE(f, &opts.Input, func(ctx context.Context) error { return estimateRun(ctx, opts) })
	opts.Config = configFlag(f, c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object")
	c.Flags().Float64Var(&opts.MaxCost, "max-cost", 0, "warn when the estimated cost exceeds this many USD")
	opts.Selection.register(c.Flags())
	opts.Cache.register(c.Flags(), true)
	return c
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
	WallTimeBound    string  `json:"wall_time_bound"` // rpm | tpm | concurrency (a guess from latency)
	WallTimeGuess    bool    `json:"wall_time_guess"`
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
	Models           []estimateModelJSON `json:"models"`
}

// estimateJSON is the `estimate --json` object.
type estimateJSON struct {
	Input string `json:"input"`
	estimatePlanJSON
	MaxCostUSD  float64          `json:"max_cost_usd,omitempty"`
	OverBudget  bool             `json:"over_budget"`
	Alternative estimatePlanJSON `json:"alternative"`
	Warnings    []string         `json:"warnings"`
	// CacheHits are the prompts the response cache answers (at $0, left out of the figures);
	// CacheSavedUSD what they cost when bought.
	CacheHits     int     `json:"cache_hits"`
	CacheSavedUSD float64 `json:"cache_saved_usd"`
}

// roundUSD drops float noise below 1e-10 USD from a sum.
func roundUSD(x float64) float64 { return math.Round(x*1e10) / 1e10 }

func estimateRun(ctx context.Context, opts *EstimateOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	sel, err := opts.Selection.options()
	if err != nil {
		return usageErr(err)
	}
	if opts.MaxCost < 0 {
		return usageErr(fmt.Errorf("--max-cost must not be negative (got %v)", opts.MaxCost))
	}
	cacheMode, cacheOpts, err := opts.Cache.options(opts.Now)
	if err != nil {
		return usageErr(err)
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	chk, err := preflight(ctx, cfg, sel, opts.Getenv, opts.Input, opts.IO)
	if err != nil {
		return err
	}
	defer chk.in.Close()
	lanes, in := chk.lanes, chk.in

	alt := sel
	alt.Prefer = 1 - sel.Prefer
	primary, other := selector.NewPlanner(lanes, sel), selector.NewPlanner(lanes, alt)
	var unserved []error
	an := newAnalyzer(lanes)
	// Prompts the response cache answers cost nothing and take no time: they are counted apart.
	responses := openCacheSource(opts.Getenv, cacheMode, cacheOpts, lanes, sel, func(err error) {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s: %v\n", cacheWarning, err)
	})
	defer responses.Close()
	var hits int
	var saved float64
	err = analyzeInput(ctx, in, an, opts.Workers, func(a *analyzed) error {
		if e, hit := responses.Lookup(a.Req); hit {
			hits++
			saved += e.CostUSD
			return nil
		}
		if _, err := primary.Add(&a.Item); err != nil && len(unserved) < request.MaxReportedErrors {
			unserved = append(unserved, fmt.Errorf("%s:%d: %s", in.Name(), a.Req.Line, err))
		}
		other.Add(&a.Item)
		return nil
	})
	if err != nil {
		return err
	}
	s, as := primary.Summary(), other.Summary()

	out := estimateJSON{Input: in.Name(), estimatePlanJSON: planJSON(s), Alternative: planJSON(as),
		MaxCostUSD: opts.MaxCost, OverBudget: opts.MaxCost > 0 && s.CostUSD > opts.MaxCost, Warnings: chk.warnings,
		CacheHits: hits, CacheSavedUSD: roundUSD(saved)}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	w := bufio.NewWriter(opts.IO.Out)
	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		printEstimate(w, in.Name(), s, as)
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
	if out.OverBudget {
		fmt.Fprintf(opts.IO.ErrOut, "warning: the estimated cost %s exceeds --max-cost %s: a run with this budget would stop early (exit 3)\n",
			usd(s.CostUSD), usd(opts.MaxCost))
	}
	if !s.DeadlineMet {
		fmt.Fprintf(opts.IO.ErrOut, "warning: no assignment meets the %s deadline: the best found takes %s\n", s.Deadline, wall(s.WallTime))
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

func planJSON(s selector.Summary) estimatePlanJSON {
	p := estimatePlanJSON{
		Prefer: s.Prefer.String(), DeadlineSeconds: s.Deadline.Seconds(), DeadlineMet: s.DeadlineMet,
		Prompts: s.Prompts, InputTokens: s.InputTokens, OutputTokens: s.OutputTokens, CostUSD: s.CostUSD,
		ExactTokens: s.EstimatedPrompts == 0, EstimatedPrompts: s.EstimatedPrompts,
		WallTimeSeconds: s.WallTime.Seconds(), WallTimeGuess: s.WallTimeGuess,
		Escalated: s.Escalated, Unassigned: s.Unassigned, Models: []estimateModelJSON{},
	}
	for _, t := range s.Lanes {
		if t.Prompts == 0 {
			continue
		}
		p.Models = append(p.Models, estimateModelJSON{
			Provider: t.Lane.Provider, Model: t.Lane.Name, Category: t.Lane.Category.String(), Free: t.Lane.Free,
			Prompts: t.Prompts, InputTokens: t.InputTokens, OutputTokens: t.OutputTokens, CostUSD: t.CostUSD,
			ExactTokens: t.EstimatedPrompts == 0, EstimatedPrompts: t.EstimatedPrompts,
			WallTimeSeconds: t.WallTime.Seconds(), WallTimeBound: t.Bound.String(), WallTimeGuess: t.Guess(),
		})
	}
	return p
}

// printEstimate writes the human-readable estimate (write errors surface when w is flushed).
func printEstimate(w io.Writer, name string, s, alt selector.Summary) {
	fmt.Fprintf(w, "%s: %s prompts, policy --prefer %s%s\n\n", name, num(s.Prompts), s.Prefer, deadlineNote(s))
	printLaneTable(w, s)
	if s.EstimatedPrompts > 0 {
		fmt.Fprintf(w, "\n~ input tokens estimated (no tokenizer for that model) for %s of %s prompts; the rest are exact.\n",
			num(s.EstimatedPrompts), num(s.Prompts-s.Unassigned))
	} else if s.Prompts > 0 {
		fmt.Fprintf(w, "\nInput tokens are exact counts for every prompt.\n")
	}
	fmt.Fprintf(w, "Wall time: %s, models running in parallel under the configured rate limits", wall(s.WallTime))
	if s.WallTimeGuess {
		fmt.Fprint(w, " (a guess: the slowest model is bound by its concurrency and an assumed typical latency, not by known limits)")
	}
	fmt.Fprintln(w, ".")
	if s.Escalated > 0 {
		fmt.Fprintf(w, "%s prompt(s) moved up a category because no model of their own could serve them (see select --explain).\n", num(s.Escalated))
	}
	if s.Unassigned > 0 {
		fmt.Fprintf(w, "%s prompt(s) cannot be served by any configured model (listed on stderr).\n", num(s.Unassigned))
	}
	fmt.Fprintf(w, "\nTrade-off: with --prefer %s it would cost %s and take %s", alt.Prefer, usd(alt.CostUSD), wall(alt.WallTime))
	if alt.WallTimeGuess {
		fmt.Fprint(w, " (guess)")
	}
	fmt.Fprintf(w, " (%s).\n", tradeoff(s, alt))
}

// printLaneTable writes the per-model totals and the overall total.
func printLaneTable(w io.Writer, s selector.Summary) {
	width := len("PROVIDER/MODEL")
	for _, t := range s.Lanes {
		if t.Prompts > 0 {
			width = max(width, len(t.Lane.String()))
		}
	}
	const row = "%-*s  %-9s  %8s  %12s  %12s  %12s  %10s  %s"
	line := func(args ...any) { fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf(row, args...), " ")) }
	line(width, "PROVIDER/MODEL", "CATEGORY", "PROMPTS", "INPUT TOK", "OUTPUT TOK", "COST USD", "WALL TIME", "BOUND")
	for _, t := range s.Lanes {
		if t.Prompts == 0 {
			continue
		}
		in := num(t.InputTokens)
		if t.EstimatedPrompts > 0 {
			in = "~" + in
		}
		cat := t.Lane.Category.String()
		if t.Lane.Free {
			cat += "*"
		}
		bound := t.Bound.String()
		if t.Guess() {
			bound += " (guess)"
		}
		line(width, t.Lane.String(), cat, num(t.Prompts), in, num(t.OutputTokens), usd(t.CostUSD), wall(t.WallTime), bound)
	}
	in := num(s.InputTokens)
	if s.EstimatedPrompts > 0 {
		in = "~" + in
	}
	line(width, "TOTAL", "", num(s.Prompts-s.Unassigned), in, num(s.OutputTokens), usd(s.CostUSD), wall(s.WallTime), "")
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

// tradeoff compares the alternative policy with the chosen one.
func tradeoff(s, alt selector.Summary) string {
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

// usd formats a dollar amount with enough digits to show small costs.
func usd(x float64) string {
	switch {
	case x == 0:
		return "$0"
	case math.Abs(x) < 0.01:
		return fmt.Sprintf("$%.6f", x)
	case math.Abs(x) < 100:
		return fmt.Sprintf("$%.4f", x)
	}
	return fmt.Sprintf("$%.2f", x)
}

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
