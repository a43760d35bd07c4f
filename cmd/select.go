package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/batch"
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
	Workers   int // analysis goroutines; 0 = GOMAXPROCS
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
  llmbatch select prompts.jsonl --json --prefer speed | jq .model`,
		Args: exactArgs(1, "INPUT.jsonl"),
	}
	c.RunE = dryRunE(f, &opts.Input, func(ctx context.Context) error { return selectRun(ctx, opts) })
	opts.Config = configFlag(f, c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON line per prompt")
	c.Flags().BoolVar(&opts.Explain, "explain", false, "say why each model was chosen and which were ruled out")
	opts.Selection.register(c.Flags())
	completeConfig(c)
	completeJSONL(c)
	completeValues(c, "prefer", "cost", "speed")
	return c
}

// selectJSON is one `select --json` line.
type selectJSON struct {
	CustomID     string   `json:"custom_id"`
	Line         int      `json:"line"`
	Category     string   `json:"category"`      // the prompt's own category (analyser or hint)
	LaneCategory string   `json:"lane_category"` // the category of the chosen model
	Escalated    bool     `json:"escalated"`
	Complexity   float64  `json:"complexity"`
	Provider     string   `json:"provider"`
	Model        string   `json:"model"`
	InputTokens  int      `json:"input_tokens"` // as the chosen model's API counts them, chat overhead included
	OutputTokens int      `json:"output_tokens"`
	CostUSD      float64  `json:"cost_usd"`
	ExactTokens  bool     `json:"exact_tokens"`
	Alternatives []string `json:"alternatives,omitempty"` // failover candidates, cheapest first
	Error        string   `json:"error,omitempty"`

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

	planner := selector.NewPlanner(lanes, sel)
	w := bufio.NewWriter(opts.IO.Out)
	enc := json.NewEncoder(w)
	rows := newSelectTable(w, lanes)
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
		line := selectLine(a, as, perr, planner, opts.Explain, ch)
		if opts.JSON {
			return enc.Encode(line)
		}
		rows.row(line)
		return nil
	})
	if err == nil && !opts.JSON {
		s := planner.Summary()
		fmt.Fprintf(w, "\nPer model (--prefer %s%s):\n", s.Prefer, deadlineNote(s))
		printLaneTable(w, s)
		fmt.Fprintf(w, "Wall time at most %s", wall(s.WallTime))
		if s.WallTimeGuess {
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
func selectLine(a *batch.Analyzed, as selector.Assignment, perr error, p *selector.Planner, explain bool, ch selector.Choice) selectJSON {
	it := &a.Item
	line := selectJSON{CustomID: it.ID, Line: a.Req.Line, Category: catName(it.Category), Complexity: round2(it.Complexity),
		OutputTokens: it.OutputTokens}
	if perr != nil {
		line.Error = perr.Error()
	} else {
		l := p.Lanes()[as.Lane]
		line.LaneCategory, line.Escalated = as.Category.String(), as.Escalated
		line.Provider, line.Model = l.Provider, l.Name
		line.InputTokens, line.ExactTokens, line.CostUSD = as.Input, as.Exact, money.Round(as.Cost)
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

// printLaneTable writes the per-model totals and the overall total of a plan: output, cost and wall
// time at most (every prompt using its max_tokens); estimate shows the expected figures too.
func printLaneTable(w io.Writer, s selector.Summary) {
	width := len("PROVIDER/MODEL")
	for _, t := range s.Lanes {
		if t.Prompts > 0 {
			width = max(width, len(t.Lane.String()))
		}
	}
	const row = "%-*s  %-9s  %8s  %12s  %12s  %12s  %10s  %s"
	line := func(args ...any) { fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf(row, args...), " ")) }
	line(width, "PROVIDER/MODEL", "CATEGORY", "PROMPTS", "INPUT TOK", "OUT AT MOST", "COST AT MOST", "WALL AT MOST", "BOUND")
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
}

func newSelectTable(w io.Writer, lanes []*selector.Lane) *selectTable {
	t := &selectTable{w: w, provWidth: len("PROVIDER"), modelWd: len("MODEL")}
	for _, l := range lanes {
		t.provWidth = max(t.provWidth, len(l.Provider))
		t.modelWd = max(t.modelWd, len(l.Name))
	}
	return t
}

const selectRow = "%-20s  %-15s  %5s  %-*s  %-*s  %10s  %8s  %11s\n"

func (t *selectTable) header() {
	fmt.Fprintf(t.w, selectRow, "ID", "CATEGORY", "CPLX", t.provWidth, "PROVIDER", t.modelWd, "MODEL", "INPUT TOK", "OUT TOK", "COST USD")
}

func (t *selectTable) row(l selectJSON) {
	cat := l.Category
	if l.Escalated {
		cat += "→" + l.LaneCategory
	}
	if l.Error != "" {
		fmt.Fprintf(t.w, selectRow, l.CustomID, cat, fmt.Sprintf("%.2f", l.Complexity), t.provWidth, "-", t.modelWd, "-", "-", "-", "-")
		fmt.Fprintf(t.w, "    error: %s\n", l.Error)
	} else {
		in := num(l.InputTokens)
		if !l.ExactTokens {
			in = "~" + in
		}
		fmt.Fprintf(t.w, selectRow, l.CustomID, cat, fmt.Sprintf("%.2f", l.Complexity), t.provWidth, l.Provider, t.modelWd, l.Model,
			in, num(l.OutputTokens), usd(l.CostUSD))
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
