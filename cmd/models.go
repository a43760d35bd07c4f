package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/config"
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
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return modelsRun(c.Context(), opts) },
	}
	opts.Config = configFlag(f, c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object instead of a table")
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
					InputPerMTok: m.InputPerMTok, OutputPerMTok: m.OutputPerMTok,
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

// count renders a limit or size compactly: "-" for 0 (unknown), 128k, 1.05M.
func count(n int) string {
	switch {
	case n == 0:
		return "-"
	case n >= 1_000_000:
		return fmt.Sprintf("%.3gM", float64(n)/1e6)
	case n >= 10_000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func price(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }
