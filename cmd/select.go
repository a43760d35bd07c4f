package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/batchplan"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// SelectOptions are the inputs of `llmbatch select`.
type SelectOptions struct {
	IO        *IOStreams
	Getenv    func(string) string
	Config    func() (*config.Config, error) // loads providers.yaml
	Input     string                         // path, or "-" for stdin
	JSON      bool
	Explain   bool
	Selection SelectionFlags
	Via       string // realtime | batch | auto, as run --via
	Workers   int    // analysis goroutines; 0 = GOMAXPROCS
}

// NewCmdSelect builds the `select` command: the model each prompt would be sent to, and why.
func NewCmdSelect(f *Factory) *cobra.Command {
	opts := &SelectOptions{IO: f.IO, Getenv: f.Getenv}
	c := &cobra.Command{
		Use:   "select INPUT.jsonl [-c providers.yaml] [--json] [--explain]",
		Short: "Show which model each prompt would go to, without sending anything",
		Long: "Validates the whole input and prints, for every prompt, its category and complexity and the model\n" +
			"run would send it to, with the estimated tokens and cost, then a summary per model. --explain adds\n" +
			"why: the analyser's reason, the rule that picked the model, and the models ruled out.",
		Example: `  llmbatch select prompts.jsonl -c providers.yaml
  llmbatch select prompts.jsonl --explain
  llmbatch select prompts.jsonl --json --prefer speed | jq .model
  llmbatch select prompts.jsonl --via auto --deadline 2h`,
		Args: exactArgs(1, "INPUT.jsonl"),
	}
	c.RunE = dryRunE(f, &opts.Input, func(ctx context.Context) error { return selectRun(ctx, opts) })
	opts.Config = configFlag(f, c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON line per prompt")
	c.Flags().BoolVar(&opts.Explain, "explain", false, "say why each model was chosen and which were ruled out")
	opts.Selection.register(c.Flags())
	registerVia(c.Flags(), &opts.Via)
	completeConfig(c)
	completeJSONL(c)
	completeValues(c, "prefer", "cost", "speed")
	completeValues(c, "via", "realtime", "batch", "auto")
	return c
}

// selectJSON is one `select --json` line.
type selectJSON struct {
	CustomID     string  `json:"custom_id"`
	Line         int     `json:"line"`
	Category     string  `json:"category"`      // the prompt's own category (analyser or hint)
	LaneCategory string  `json:"lane_category"` // the category of the chosen model
	Escalated    bool    `json:"escalated"`
	Complexity   float64 `json:"complexity"`
	Provider     string  `json:"provider"`
	Model        string  `json:"model"`
	InputTokens  int     `json:"input_tokens"` // as the chosen model's API counts them, chat overhead included
	OutputTokens int     `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"` // at the route's price: the batch discount on the batch route
	ExactTokens  bool    `json:"exact_tokens"`
	// Route is where run --via would send the prompt (realtime | batch), RealtimeCostUSD its cost
	// through the realtime API, TurnaroundSeconds the expected batch turnaround on the batch route.
	Route             string   `json:"route"`
	RealtimeCostUSD   float64  `json:"realtime_cost_usd"`
	TurnaroundSeconds float64  `json:"turnaround_seconds,omitempty"`
	Alternatives      []string `json:"alternatives,omitempty"` // failover candidates, cheapest first
	Error             string   `json:"error,omitempty"`

	// with --explain
	Analysis string         `json:"analysis,omitempty"`
	Why      string         `json:"why,omitempty"`
	Excluded []excludedJSON `json:"excluded,omitempty"`
}

type excludedJSON struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Reason   string `json:"reason"`
}

func selectRun(ctx context.Context, opts *SelectOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	sel, err := opts.Selection.options()
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
	routes, err := laneRoutes(cfg, lanes, opts.Via, sel.Deadline, opts.Getenv, "")
	if err != nil {
		return err
	}

	planner := selector.NewPlanner(lanes, sel)
	w := bufio.NewWriter(opts.IO.Out)
	enc := json.NewEncoder(w)
	rows := newSelectTable(w, lanes)
	rows.routes = opts.Via != "" && opts.Via != batchplan.ViaRealtime
	if !opts.JSON {
		rows.header()
	}
	var unserved []error
	err = chk.Analyze(ctx, opts.Workers, func(a *batch.Analyzed) error {
		var ch selector.Choice
		if opts.Explain {
			ch = planner.Explain(&a.Item)
		}
		as, perr := planner.Add(&a.Item)
		if perr != nil && len(unserved) < request.MaxReportedErrors {
			unserved = append(unserved, fmt.Errorf("%s:%d: %s", in.Name(), a.Req.Line, perr))
		}
		line := selectLine(a, as, perr, planner, opts.Explain, ch, routes)
		if opts.JSON {
			return enc.Encode(line)
		}
		rows.row(line)
		return nil
	})
	if err == nil && !opts.JSON {
		s := planner.Summary()
		fmt.Fprintf(w, "\nPer model (--prefer %s%s):\n", s.Prefer, deadlineNote(s))
		wt, batchWall := printLaneTable(w, s, routeTable{cfg: cfg, via: opts.Via, routes: routes})
		fmt.Fprintf(w, "Wall time at most %s", wall(wt))
		if s.WallTimeGuess && !batchWall {
			fmt.Fprint(w, " (a guess: no known limits for the slowest model)")
		}
		fmt.Fprintln(w, "; ~ marks estimated input tokens, * free tier; llmbatch estimate shows the expected figures.")
	}
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("select: write: %w", ferr)
	}
	if err != nil {
		return err
	}
	return unservedError(planner.Summary().Unassigned, unserved)
}

// selectLine builds the report of one prompt.
func selectLine(a *batch.Analyzed, as selector.Assignment, perr error, p *selector.Planner, explain bool, ch selector.Choice,
	routes []batchplan.Decision) selectJSON {
	it := &a.Item
	line := selectJSON{CustomID: it.ID, Line: a.Req.Line, Category: catName(it.Category), Complexity: round2(it.Complexity),
		OutputTokens: it.OutputTokens}
	if perr != nil {
		line.Error = perr.Error()
	} else {
		l := p.Lanes()[as.Lane]
		line.LaneCategory, line.Escalated = as.Category.String(), as.Escalated
		line.Provider, line.Model = l.Provider, l.Name
		d := routes[as.Lane]
		line.InputTokens, line.ExactTokens = as.Input, as.Exact
		line.Route, line.RealtimeCostUSD, line.CostUSD = string(d.Route), money.Round(as.Cost), money.Round(d.Price(as.Cost))
		if d.Route == batchplan.Batch {
			line.TurnaroundSeconds = d.Turnaround.Expected.Seconds()
		}
		for _, i := range p.Group(as.Group) {
			if i != as.Lane {
				line.Alternatives = append(line.Alternatives, p.Lanes()[i].String())
			}
		}
	}
	if explain {
		line.Analysis, line.Why = a.Reason, ch.Why
		for _, e := range ch.Excluded {
			line.Excluded = append(line.Excluded, excludedJSON{Provider: e.Lane.Provider, Model: e.Lane.Name, Reason: e.Reason})
		}
	}
	return line
}

// routeTable is what the lane table needs to show routes: the decisions by lane index; with via
// realtime (or empty) the table has no route columns.
type routeTable struct {
	cfg    *config.Config
	via    string
	routes []batchplan.Decision
}

func (r routeTable) shown() bool { return r.via != "" && r.via != batchplan.ViaRealtime }

// printLaneTable writes the per-model totals and the overall total of a plan: output, cost and wall
// time at most (every prompt using its max_tokens); estimate shows the expected figures too. With
// --via batch|auto it adds each lane's route: a batch lane's cost is at the batch discount and its
// wall time is its jobs' expected turnaround.
// It returns the plan's wall time and whether a batch lane sets it.
func printLaneTable(w io.Writer, s selector.Summary, rt routeTable) (time.Duration, bool) {
	width := len("PROVIDER/MODEL")
	for _, t := range s.Lanes {
		if t.Prompts > 0 {
			width = max(width, len(t.Lane.String()))
		}
	}
	const row = "%-*s  %-9s  %8s  %12s  %12s  %12s  %10s  %s"
	line := func(args ...any) { fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf(row, args...), " ")) }
	line(width, "PROVIDER/MODEL", "CATEGORY", "PROMPTS", "INPUT TOK", "OUT AT MOST", "COST AT MOST", "WALL AT MOST", "BOUND")
	var cost, rtCost, batchCost, batchRealtime float64
	var wallMax time.Duration
	var batchPrompts int64
	batchWall := false
	for i, t := range s.Lanes {
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
		c, wt := t.CostUSD, t.WallTime
		if rt.shown() {
			d := rt.routes[i]
			c = money.Round(d.Price(t.CostUSD))
			if d.Route == batchplan.Batch {
				wt = laneBatchWall(rt.cfg, s.Lanes[i].Lane, d, t.Prompts, t.InputTokens+t.OutputTokens)
				bound = "batch, turnaround " + turnaroundNote(d)
				batchPrompts += t.Prompts
				batchCost += c
				batchRealtime += t.CostUSD
			} else {
				bound = "realtime, " + bound
				rtCost += c
			}
		}
		cost += c
		if wt >= wallMax {
			wallMax, batchWall = wt, rt.shown() && rt.routes[i].Route == batchplan.Batch
		}
		line(width, t.Lane.String(), cat, num(t.Prompts), in, num(t.OutputTokens), usd(c), wall(wt), bound)
	}
	totCost, totWall := s.CostUSD, s.WallTime
	if rt.shown() {
		totCost, totWall = money.Round(cost), wallMax
	}
	in := num(s.InputTokens)
	if s.EstimatedPrompts > 0 {
		in = "~" + in
	}
	line(width, "TOTAL", "", num(s.Prompts-s.Unassigned), in, num(s.OutputTokens), usd(totCost), wall(totWall), "")
	if rt.shown() {
		fmt.Fprintf(w, "Route (--via %s): %s prompts batch at %s (%s through realtime), %s realtime at %s.\n", rt.via,
			num(batchPrompts), usd(money.Round(batchCost)), usd(money.Round(batchRealtime)),
			num(s.Prompts-s.Unassigned-batchPrompts), usd(money.Round(rtCost)))
	}
	return totWall, batchWall
}

func catName(c model.Category) string {
	if c == model.Unknown {
		return "any"
	}
	return c.String()
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// selectTable prints prompt rows in fixed-width columns (streamed: no buffering of the whole batch).
type selectTable struct {
	w                  io.Writer
	provWidth, modelWd int
	routes             bool // a ROUTE column (--via batch|auto)
}

func newSelectTable(w io.Writer, lanes []*selector.Lane) *selectTable {
	t := &selectTable{w: w, provWidth: len("PROVIDER"), modelWd: len("MODEL")}
	for _, l := range lanes {
		t.provWidth = max(t.provWidth, len(l.Provider))
		t.modelWd = max(t.modelWd, len(l.Name))
	}
	return t
}

const selectRow = "%-20s  %-15s  %5s  %-*s  %-*s  %10s  %8s  %11s"

// end finishes a row: the route column when shown, then the newline.
func (t *selectTable) end(route string) {
	if t.routes {
		fmt.Fprintf(t.w, "  %s", route)
	}
	fmt.Fprintln(t.w)
}

func (t *selectTable) header() {
	fmt.Fprintf(t.w, selectRow, "ID", "CATEGORY", "CPLX", t.provWidth, "PROVIDER", t.modelWd, "MODEL", "INPUT TOK", "OUT TOK", "COST USD")
	t.end("ROUTE")
}

func (t *selectTable) row(l selectJSON) {
	cat := l.Category
	if l.Escalated {
		cat += "→" + l.LaneCategory
	}
	if l.Error != "" {
		fmt.Fprintf(t.w, selectRow, l.CustomID, cat, fmt.Sprintf("%.2f", l.Complexity), t.provWidth, "-", t.modelWd, "-", "-", "-", "-")
		t.end("-")
		fmt.Fprintf(t.w, "    error: %s\n", l.Error)
	} else {
		in := num(l.InputTokens)
		if !l.ExactTokens {
			in = "~" + in
		}
		fmt.Fprintf(t.w, selectRow, l.CustomID, cat, fmt.Sprintf("%.2f", l.Complexity), t.provWidth, l.Provider, t.modelWd, l.Model,
			in, num(l.OutputTokens), usd(l.CostUSD))
		route := l.Route
		if l.TurnaroundSeconds > 0 {
			route += fmt.Sprintf(" (~%s, realtime %s)", time.Duration(l.TurnaroundSeconds*float64(time.Second)), usd(l.RealtimeCostUSD))
		}
		t.end(route)
	}
	if l.Analysis != "" || l.Why != "" {
		fmt.Fprintf(t.w, "    why: %s\n", strings.Join(nonEmpty(l.Analysis, l.Why), "; "))
	}
	if len(l.Alternatives) > 0 && (l.Analysis != "" || l.Why != "") {
		fmt.Fprintf(t.w, "    alternatives: %s\n", strings.Join(l.Alternatives, ", "))
	}
	pinned := 0
	for _, e := range l.Excluded {
		if strings.HasPrefix(e.Reason, "pinned to ") {
			pinned++
			continue
		}
		fmt.Fprintf(t.w, "    ruled out %s/%s: %s\n", e.Provider, e.Model, e.Reason)
	}
	if pinned > 0 {
		fmt.Fprintf(t.w, "    ruled out %d other models: pinned\n", pinned)
	}
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
