package cmd

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/results"
)

// TestRunFlagsParse checks run's flag parsing apart from the run, through the runF seam.
func TestRunFlagsParse(t *testing.T) {
	f := &Factory{IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, Getenv: func(string) string { return "" }, Now: time.Now}
	var got *RunOptions
	c := &cobra.Command{Use: "llmbatch"} // -v is the root's persistent flag
	globalFlags(c, f)
	c.AddCommand(NewCmdRun(f, func(_ context.Context, o *RunOptions) error { got = o; return nil }))
	c.SetArgs([]string{"run", "in.jsonl", "-o", "out.jsonl", "-c", "p.yaml", "--concurrency", "7", "--max-cost", "1.5",
		"--fresh", "--format", "openai", "--progress", "never", "--quiet", "--log-format", "json", "-v",
		"--prefer", "speed", "--deadline", "30m", "--model", "m", "--provider", "p", "--via", "auto",
		"--cache", "read", "--cache-max-size", "2GiB", "--cache-ttl", "24h", "--metrics-addr", "127.0.0.1:9090"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("runF was not called")
	}
	want := RunOptions{Factory: f, Input: "in.jsonl", Output: "out.jsonl", ConfigPath: "p.yaml",
		Selection:   SelectionFlags{Prefer: "speed", Deadline: 30 * time.Minute, Model: "m", Provider: "p"},
		Concurrency: 7, MaxCost: 1.5, Fresh: true, Format: results.FormatOpenAI, Progress: "never", Quiet: true,
		LogFormat: "json", Verbose: true, Via: "auto",
		Cache: CacheFlags{Mode: "read", MaxSize: "2GiB", TTL: 24 * time.Hour}, MetricsAddr: "127.0.0.1:9090"}
	if *got != want {
		t.Errorf("parsed %+v\nwant   %+v", *got, want)
	}
}

// TestRunFlagsRefused checks the values run refuses before loading anything (exit 2).
func TestRunFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"in.jsonl", "--progress", "sometimes"},
		{"in.jsonl", "--max-cost", "-1"},
		{"in.jsonl", "--concurrency", "-3"},
		{"in.jsonl", "--log-format", "xml"},
	} {
		var errOut bytes.Buffer
		f := &Factory{IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &errOut}, Getenv: func(string) string { return "" }, Now: time.Now}
		if code := Execute(context.Background(), f, append([]string{"run"}, args...)); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, ExitUsage, errOut.String())
		}
	}
}
