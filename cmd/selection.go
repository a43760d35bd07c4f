package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// This file holds what estimate, select and run share on the command line: the selection flags.
// The preparation they share (checks, analysis) is batch.Prepare.

// SelectionFlags are the selection policy flags of run, select and estimate (DESIGN §1); the zero
// value is the default policy (cost, no deadline, no pins).
type SelectionFlags struct {
	Prefer   string
	Deadline time.Duration
	Model    string
	Provider string
}

// register adds the flags to fs.
func (s *SelectionFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.Prefer, "prefer", "cost", "selection policy, `cost|speed`: cost (cheapest capable model, free tier first) or speed (share the work across capable models)")
	fs.DurationVar(&s.Deadline, "deadline", 0, "with --prefer cost: add models of the same category until the estimated wall time fits (e.g. 30m)")
	fs.StringVar(&s.Model, "model", "", "send every prompt to this model (overrides the model named in a request)")
	fs.StringVar(&s.Provider, "provider", "", "send every prompt to this provider")
}

// options validates the flags and returns the selector options.
func (s *SelectionFlags) options() (selector.Options, error) {
	p, err := selector.ParsePrefer(s.Prefer)
	if err != nil {
		return selector.Options{}, err
	}
	if s.Deadline < 0 {
		return selector.Options{}, fmt.Errorf("--deadline must not be negative (got %s)", s.Deadline)
	}
	return selector.Options{Prefer: p, Deadline: s.Deadline, PinModel: s.Model, PinProvider: s.Provider}, nil
}

// args returns the flags that reproduce a non-default policy on a command line (for a resume command).
func (s *SelectionFlags) args() []string {
	var out []string
	if p, err := selector.ParsePrefer(s.Prefer); err == nil && p != selector.PreferCost {
		out = append(out, "--prefer "+p.String())
	}
	if s.Deadline > 0 {
		out = append(out, "--deadline "+s.Deadline.String())
	}
	if s.Model != "" {
		out = append(out, "--model "+shellQuote(s.Model))
	}
	if s.Provider != "" {
		out = append(out, "--provider "+shellQuote(s.Provider))
	}
	return out
}

// modelCategory is a configured model's category: the configured one, else derived from its name.
func modelCategory(m *config.Model) model.Category { return model.Of(m.Name, m.Category) }

// modelContext is a configured model's context window: the configured one, else the catalogue's
// (a conservative default for unknown models).
func modelContext(m *config.Model) int { return model.ContextWindow(m.Name, m.ContextWindow) }
