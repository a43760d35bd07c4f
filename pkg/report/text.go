package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmbatch/llmbatch/pkg/money"
)

// Text writes the terminal summary: totals, the per-model table and a timeline of the same series
// the HTML charts show (throughput per lane, cumulative cost, latency percentiles, events).
func (r *Report) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d result lines: %d ok, %d failed, %d from the cache; %d attempts, %d retries\n",
		r.Source, r.Lines, r.OK, r.Failed, r.Cached, r.Attempts, r.Retries)
	if r.Buckets > 0 {
		fmt.Fprintf(&b, "from %s to %s (%s)\n", r.Start.UTC().Format("2006-01-02 15:04:05.000"),
			r.End.UTC().Format("15:04:05.000 MST"), r.End.Sub(r.Start).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "cost %s", money.Format(r.CostUSD))
	if r.Cached > 0 {
		fmt.Fprintf(&b, "; the cache hits saved %s", money.Format(r.SavedUSD))
	}
	b.WriteString("\n")
	if r.Untimed > 0 {
		fmt.Fprintf(&b, "%d lines have no started_at/finished_at (written by an older llmbatch): in the table, not in the timeline\n", r.Untimed)
	}
	b.WriteString("\n")

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PROVIDER\tMODEL\tOK\tFAILED\tCACHED\tIN TOK\tOUT TOK\tCOST\tP50 MS\tP90 MS\tP99 MS\tRETRIES\t429s\tOK/MIN\tCEILING/MIN\t")
	for _, m := range r.Models {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", m.Provider, m.Model, m.OK, m.Failed,
			m.Cached, m.InputTokens, m.OutputTokens, money.Format(m.CostUSD), m.P50, m.P90, m.P99, m.Retries,
			r.logged(m.RateLimited), rate(m.PerMinute), rate(m.Ceiling))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var totals []string
	for _, e := range r.Events {
		totals = append(totals, fmt.Sprintf("%s %d", e.Name, int(e.Total)))
	}
	if len(totals) > 0 {
		fmt.Fprintf(&b, "\nevents: %s\n", strings.Join(totals, ", "))
	}
	if r.Logged == 0 && r.Retries > 0 {
		b.WriteString("429s and failed attempts by class come from the attempt log: run with -v to record it\n")
	}

	if r.Buckets > 0 {
		fmt.Fprintf(&b, "\ntimeline (%s buckets from the first start; lanes in ok/min; latency of the ok lines in ms):\n", r.Step)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := []string{"ELAPSED"}
		for _, s := range r.Throughput {
			head = append(head, s.Name)
		}
		head = append(head, "COST", "P50", "P90", "P99")
		for _, e := range r.Events {
			head = append(head, e.Name)
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for i := range r.Buckets {
			row := []string{elapsed(time.Duration(i) * r.Step)}
			for _, s := range r.Throughput {
				row = append(row, rate(s.Values[i]))
			}
			cost := 0.0
			for _, s := range r.Cost {
				cost += s.Values[i]
			}
			row = append(row, money.Format(money.Round(cost)))
			for _, s := range r.Latency {
				row = append(row, ms(s.Values[i]))
			}
			for _, e := range r.Events {
				row = append(row, strconv.Itoa(int(e.Values[i])))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// logged prints a count that only the attempt log knows, or "–" when no line has a log.
func (r *Report) logged(n int) string {
	if r.Logged == 0 {
		return "–"
	}
	return strconv.Itoa(n)
}

func rate(v float64) string {
	if v == 0 {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func ms(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// elapsed formats an offset from the run's start as m:ss or h:mm:ss.
func elapsed(d time.Duration) string {
	s := int(d / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
