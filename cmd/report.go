package cmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/report"
)

// ReportOptions are the inputs of `llmbatch report`.
type ReportOptions struct {
	Factory    *Factory
	Input      string // a result file; - = stdin
	Output     string // "" = terminal summary on stdout; else the HTML page ("-" = stdout)
	ConfigPath string // for the lanes' ceilings; optional
}

// NewCmdReport builds the `report` command.
func NewCmdReport(f *Factory) *cobra.Command {
	o := &ReportOptions{Factory: f}
	c := &cobra.Command{
		Use:   "report OUT.jsonl",
		Short: "Summarise a result file: throughput, cost, latency and failures over time",
		Long: `Report reads a result file written by run and shows what the run did: ok throughput per lane
over time against the lane's ceiling (from the limits in providers.yaml, when it is found), cumulative
cost per model, latency percentiles over time, 429s, retries and failures by class over time, and a
per-model table. Without -o it prints a terminal summary; with -o FILE.html it writes one
self-contained HTML page with charts that opens offline. 429s and failed attempts by class come from
the attempt log that run -v records.`,
		Example: `  llmbatch report testdata/out/demo.results.jsonl
  llmbatch report out.results.jsonl -c providers.yaml -o report.html`,
		Args: exactArgs(1, "OUT.jsonl"),
		RunE: func(c *cobra.Command, args []string) error {
			o.Input = args[0]
			return reportRun(o)
		},
	}
	c.Flags().StringVarP(&o.Output, "output", "o", "", "write the HTML report to FILE (- = stdout) instead of the terminal summary")
	c.Flags().StringVarP(&o.ConfigPath, "config", "c", "", "providers file for the lanes' ceilings (default ./providers.yaml or $LLMBATCH_CONFIG when present)")
	completeConfig(c)
	completeJSONL(c)
	return c
}

func reportRun(o *ReportOptions) error {
	f := o.Factory
	var in io.Reader = f.IO.In
	name := "stdin"
	if o.Input != "-" {
		file, err := os.Open(o.Input)
		if err != nil {
			return usageErr(fmt.Errorf("report: %w", err))
		}
		defer file.Close()
		in, name = file, o.Input
	}
	limits, err := reportLimits(o)
	if err != nil {
		return err
	}
	rs, err := report.Read(in, name)
	if err != nil {
		return usageErr(err)
	}
	if rs.Len() == 0 {
		return usageErr(fmt.Errorf("%s: no result lines to report on", name))
	}
	r := report.Compute(rs, report.Options{Limits: limits})
	switch o.Output {
	case "":
		return report.Compute(rs, report.Options{Limits: limits, MaxBuckets: 20}).Text(f.IO.Out)
	case "-":
		return r.HTML(f.IO.Out)
	}
	if err := writeFileAtomic(o.Output, r.HTML); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "wrote %s: %d result lines, %s buckets\n", o.Output, r.Lines, r.Step)
	return nil
}

// reportLimits reads the lanes' configured limits from -c, or from the default providers file when
// one is present: the ceilings are optional, so a missing default file is no error.
func reportLimits(o *ReportOptions) (map[string]report.Limit, error) {
	f := o.Factory
	path := o.ConfigPath
	if path == "" {
		path = f.Getenv("LLMBATCH_CONFIG")
	}
	if path == "" {
		if _, err := os.Stat("providers.yaml"); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	cfg, err := f.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	return configLimits(cfg), nil
}

// configLimits maps each configured lane to its limits.
func configLimits(cfg *config.Config) map[string]report.Limit {
	out := map[string]report.Limit{}
	for _, p := range cfg.Providers {
		for _, m := range p.Models {
			out[p.Name+"/"+m.Name] = report.Limit{RPM: m.RPM, TPM: m.TPM}
		}
	}
	return out
}

// writeFileAtomic writes path through a temporary file in its directory and renames it into place,
// so a reader never sees half a report.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usageErr(fmt.Errorf("report: %w", err))
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return usageErr(fmt.Errorf("report: %w", err))
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("report: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("report: %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
