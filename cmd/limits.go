package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
	"github.com/llmbatch/llmbatch/pkg/shared"
)

// LimitsOptions are the inputs of `llmbatch limits`.
type LimitsOptions struct {
	IO     *IOStreams
	Getenv func(string) string
	Shared string // --shared URL; else $LLMBATCH_REDIS_URL
	JSON   bool
}

// NewCmdLimits builds the `limits` command: the live shared state on a Redis that llmbatch
// processes share limits through (lanes, limits configured and learned, use in the current window
// and day, pauses, processes seen, job budgets).
func NewCmdLimits(f *Factory) *cobra.Command {
	opts := &LimitsOptions{IO: f.IO, Getenv: f.Getenv}
	c := &cobra.Command{
		Use:   "limits --shared redis://host:6379/0 [--json]",
		Short: "Show the limits shared through Redis: lanes, limits (configured, learned), use, pauses, processes",
		Example: `  llmbatch limits --shared redis://127.0.0.1:6379/0
  LLMBATCH_REDIS_URL=rediss://:secret@redis.internal:6380/0 llmbatch limits --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return limitsRun(c.Context(), opts) },
	}
	c.Flags().StringVar(&opts.Shared, "shared", "", "the Redis URL, `redis://host:6379/0` (rediss:// for TLS); default $"+shared.EnvURL)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object instead of tables")
	_ = c.RegisterFlagCompletionFunc("shared", cobra.NoFileCompletions)
	return c
}

func limitsRun(ctx context.Context, opts *LimitsOptions) error {
	url, err := shared.Resolve(opts.Shared, "", opts.Getenv)
	if err != nil {
		return usageErr(err)
	}
	if url == "" {
		return usageErr(fmt.Errorf("limits needs the Redis URL: --shared redis://host:6379/0 or $%s", shared.EnvURL))
	}
	ov, err := shared.Inspect(ctx, url, opts.Getenv)
	if err != nil {
		if errors.Is(err, shared.ErrUnreachable) {
			return usageErr(err)
		}
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(ov)
	}
	return printOverview(opts.IO.Out, ov)
}

func printOverview(w io.Writer, ov *shared.Overview) error {
	fmt.Fprintf(w, "Redis %s at %s (the server's clock)\n\n", ov.Redis, ov.Time.Format("2006-01-02 15:04:05 MST"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(ov.Lanes) == 0 {
		fmt.Fprintln(w, "No shared lanes.")
	} else {
		fmt.Fprintln(tw, "LANE\tBASE URL\tKEY\tRPM\tTPM\tRPD\tTPD\tMIN REQ\tMIN TOK\tDAY REQ\tDAY TOK\t429s\tPROCS\tSTATE")
		for _, l := range ov.Lanes {
			name := l.Name
			if name == "" {
				name = l.Provider + "/" + l.Model
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", name, l.BaseURL, orDash(l.Key),
				limitCell(l.Limits.RPM, l.Source.RPM, l.Configured.RPM), limitCell(l.Limits.TPM, l.Source.TPM, l.Configured.TPM),
				limitCell(l.Limits.RPD, l.Source.RPD, l.Configured.RPD), limitCell(l.Limits.TPD, l.Source.TPD, l.Configured.TPD),
				l.WindowRequests, l.WindowTokens, l.DayRequests, l.DayTokens, l.RateLimited, l.Processes, laneStateCell(l, ov.Time))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nLimits: value (source); config N = the configured value a learned one replaced. MIN = last 60 s, reserved slots included.")
	}
	fmt.Fprintln(w)
	if len(ov.Processes) == 0 {
		fmt.Fprintln(w, "No processes seen in the last 15 s.")
	} else {
		fmt.Fprintln(tw, "PROCESS\tHOST\tPID\tJOB\tLANES\tSTARTED")
		for _, p := range ov.Processes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", p.ID, p.Host, p.PID, orDash(p.Job), p.Lanes, p.Started.Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(ov.Jobs) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "JOB\tCAP\tSPENT\tIN FLIGHT")
		for _, j := range ov.Jobs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Job, money.Format(j.CapUSD), money.Format(j.SpentUSD), money.Format(j.ReservedUSD))
		}
		return tw.Flush()
	}
	return nil
}

// limitCell is "500 (headers; config 600)", "500 (config)" or "-" when unknown.
func limitCell(v int, src ratelimit.Source, cfg int) string {
	if v <= 0 {
		return "-"
	}
	s := strconv.Itoa(v) + " (" + src.String()
	if src != ratelimit.SourceConfig && cfg > 0 && cfg != v {
		s += "; config " + strconv.Itoa(cfg)
	}
	return s + ")"
}

func laneStateCell(l shared.LaneState, now time.Time) string {
	var parts []string
	if !l.PausedUntil.IsZero() {
		parts = append(parts, "paused "+l.PausedUntil.Sub(now).Round(time.Second).String())
	}
	if !l.BreakerOpen.IsZero() {
		parts = append(parts, "breaker open "+l.BreakerOpen.Sub(now).Round(time.Second).String())
	}
	if l.DayExhausted {
		parts = append(parts, "day spent until "+l.DayResetAt.Format("15:04 MST"))
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
