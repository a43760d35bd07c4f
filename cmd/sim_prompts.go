package cmd

import (
	"bufio"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// NewCmdSimPrompts builds `sim prompts N`: N synthetic prompt lines on stdout, for load tests and
// benchmarks (make bench-run, make bench-loopback) without shipping large files.
func NewCmdSimPrompts(f *Factory) *cobra.Command {
	var maxTokens int
	c := &cobra.Command{
		Use:     "prompts N",
		Short:   "Write N synthetic prompt lines (JSONL) to stdout",
		Example: "  llmbatch sim prompts 1000000 > testdata/out/million.jsonl",
		Args:    exactArgs(1, "N"),
		RunE: func(_ *cobra.Command, args []string) error {
			var n int
			if _, err := fmt.Sscan(args[0], &n); err != nil || n < 0 {
				return usageErr(fmt.Errorf("sim prompts: N must be a non-negative whole number, got %q", args[0]))
			}
			w := bufio.NewWriterSize(f.IO.Out, 1<<16)
			enc := json.NewEncoder(w)
			for i := range n {
				line := struct {
					ID        string `json:"id"`
					Prompt    string `json:"prompt"`
					MaxTokens int    `json:"max_tokens"`
				}{fmt.Sprintf("p%07d", i), fmt.Sprintf("Label review %d as positive or negative: the service was fine but slow.", i), maxTokens}
				if err := enc.Encode(line); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	c.Flags().IntVar(&maxTokens, "max-tokens", 50, "max_tokens of every prompt")
	return c
}
