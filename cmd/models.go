package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/redact"
)

// ModelsOptions are the inputs of `llmbatch models`.
type ModelsOptions struct {
	IO     *IOStreams
	Getenv func(string) string
	Config func() (*config.Config, error) // loads providers.yaml
	JSON   bool
}

// NewCmdModels builds the `models` command: the configured providers and models with their category,
// context window, prices, limits, free flag, and whether each provider's key variable is set.
func NewCmdModels(f *Factory) *cobra.Command {
	opts := &ModelsOptions{IO: f.IO, Getenv: f.Getenv}
	c := &cobra.Command{
		Use:   "models [-c providers.yaml] [--json]",
		Short: "List the configured providers and models: category, context, prices, limits, key status",
		Example: `  llmbatch models
  llmbatch models -c testdata/providers.sim.yaml --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return modelsRun(c.Context(), opts) },
	}
	opts.Config = configFlag(f, c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object instead of a table")
	completeConfig(c)
	return c
}

// modelsJSON is the --json shape of one provider.
type modelsJSON struct {
	Name           string      `json:"name"`
	Type           string      `json:"type"`
	BaseURL        string      `json:"base_url"`
	APIKeyEnv      string      `json:"api_key_env"`
	KeySet         bool        `json:"key_set"`
	Available      bool        `json:"available"`
	Unavailable    string      `json:"unavailable,omitempty"` // why not, when not available
	MaxConcurrency int         `json:"max_concurrency"`
	Models         []modelJSON `json:"models"`
}

type modelJSON struct {
	Name            string  `json:"name"`
	Category        string  `json:"category"`
	ContextWindow   int     `json:"context_window"`
	MaxOutputTokens int     `json:"max_output_tokens"`
	InputPerMTok    float64 `json:"input_per_mtok"`
	OutputPerMTok   float64 `json:"output_per_mtok"`
	RPM             int     `json:"rpm"`
	TPM             int     `json:"tpm"`
	RPD             int     `json:"rpd"`
	TPD             int     `json:"tpd"`
	Free            bool    `json:"free"`
	Encoding        string  `json:"encoding"`
}

func modelsRun(_ context.Context, opts *ModelsOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	getenv := opts.Getenv
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", w)
	}
	if opts.JSON {
		out := struct {
			Config    string       `json:"config"`
			Providers []modelsJSON `json:"providers"`
		}{Config: cfg.Path, Providers: []modelsJSON{}}
		for _, p := range cfg.Providers {
			pj := modelsJSON{Name: p.Name, Type: p.Type, BaseURL: redact.URL(p.BaseURL), APIKeyEnv: redact.EnvName(p.APIKeyEnv),
				KeySet: p.APIKey(getenv) != "", Available: p.Available(getenv),
				Unavailable: p.Unavailable(getenv), MaxConcurrency: p.MaxConcurrency}
			for _, m := range p.Models {
				pj.Models = append(pj.Models, modelJSON{Name: m.Name, Category: modelCategory(m).String(),
					ContextWindow: modelContext(m), MaxOutputTokens: m.MaxOutputTokens,
					InputPerMTok: money.Round(m.InputPerMTok), OutputPerMTok: money.Round(m.OutputPerMTok),
					RPM: m.RPM, TPM: m.TPM, RPD: m.RPD, TPD: m.TPD, Free: m.Free, Encoding: m.Encoding})
			}
			out.Providers = append(out.Providers, pj)
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("models: write: %w", err)
		}
		return nil
	}

	fmt.Fprintf(opts.IO.Out, "Providers from %s (prices in USD per million tokens; limits 0 = unknown, learned from headers)\n\n", cfg.Path)
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tMODEL\tCATEGORY\tCONTEXT\tMAX OUT\tIN $/M\tOUT $/M\tRPM\tTPM\tRPD\tTPD\tFREE\tKEY")
	for _, p := range cfg.Providers {
		key := keyStatus(p, getenv)
		for _, m := range p.Models {
			free := ""
			if m.Free {
				free = "free"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				p.Name, m.Name, modelCategory(m), count(modelContext(m)), count(m.MaxOutputTokens),
				price(m.InputPerMTok), price(m.OutputPerMTok),
				count(m.RPM), count(m.TPM), count(m.RPD), count(m.TPD), free, key)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("models: write: %w", err)
	}
	return nil
}

// keyStatus says whether a provider's key variable is set, never showing the key.
func keyStatus(p *config.Provider, getenv func(string) string) string {
	switch {
	case p.Disabled():
		return "disabled (enabled: false)"
	case !p.NeedsKey():
		return "none needed"
	case p.KeyProblem(getenv) != "":
		return redact.EnvName(p.APIKeyEnv) + " UNUSABLE: " + p.KeyProblem(getenv)
	case p.APIKey(getenv) != "":
		return redact.EnvName(p.APIKeyEnv) + " set"
	}
	return redact.EnvName(p.APIKeyEnv) + " NOT SET (skipped)"
}

// count renders a limit or size in full with thousands separators, as every table of llmbatch
// does (128,000 and 1,048,576, never 128k next to 1.05M); "-" for 0 (unknown).
func count(n int) string {
	if n == 0 {
		return "-"
	}
	return num(n)
}

// price renders a price per million tokens in plain decimals (never an exponent), rounded like every
// amount of money, with at least two decimals: 0.05, 0.20, 5.00, 0.075.
func price(p float64) string {
	s := strconv.FormatFloat(money.Round(p), 'f', -1, 64)
	dot := strings.IndexByte(s, '.')
	if dot < 0 {
		return s + ".00"
	}
	return s + strings.Repeat("0", max(0, 2-(len(s)-dot-1)))
}
