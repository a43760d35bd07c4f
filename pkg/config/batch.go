package config

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Batch is a provider's batch API settings (`batch:` in a provider block): whether llmbatch may send
// its prompts as provider batch jobs (OpenAI Files + /v1/batches, Anthropic Message Batches, Gemini
// batchGenerateContent; OpenAI-compatible providers with the Files and Batches endpoints use the
// OpenAI dialect), at what discount, and within which per-job caps. `batch: true` is short for
// `batch: {enabled: true}` with the defaults of the provider's type.
type Batch struct {
	Enabled bool `yaml:"enabled"`
	// Discount is the fraction of the realtime price a batch answer is NOT charged: 0.5 = half price.
	Discount *float64 `yaml:"discount"`
	// MaxRequests and MaxBytes cap one provider job (lines and input bytes).
	MaxRequests int      `yaml:"max_requests"`
	MaxBytes    ByteSize `yaml:"max_bytes"`
	// Turnaround is the expected time from submission to results (the deadline planner's estimate).
	Turnaround Duration `yaml:"turnaround"`
	// Poll is the first poll interval; polling backs off from it up to minutes.
	Poll Duration `yaml:"poll"`
	// EnqueuedTokens is the provider's limit on tokens in unfinished batch jobs, per model name;
	// a model not listed has no limit.
	EnqueuedTokens map[string]int64 `yaml:"enqueued_tokens"`
}

// DefaultDiscount is the batch discount when the config gives none: batch answers cost half.
const DefaultDiscount = 0.5

// DiscountOrDefault returns the configured discount, or DefaultDiscount.
func (b *Batch) DiscountOrDefault() float64 {
	if b == nil || b.Discount == nil {
		return DefaultDiscount
	}
	return *b.Discount
}

// UnmarshalYAML accepts `batch: true|false` as well as the mapping.
func (b *Batch) UnmarshalYAML(node ast.Node) error {
	if n, ok := node.(*ast.BoolNode); ok {
		*b = Batch{Enabled: n.Value}
		return nil
	}
	type plain Batch
	var p plain
	if err := yaml.NodeToValue(node, &p, yaml.Strict()); err != nil {
		return err
	}
	*b = Batch(p)
	return nil
}

// ByteSize is a size in bytes written as a number or with a unit ("200MB", "256 MiB") in YAML.
type ByteSize int64

// UnmarshalYAML parses the size and reports a bad one with its line and column.
func (s *ByteSize) UnmarshalYAML(node ast.Node) error {
	var text string
	switch n := node.(type) {
	case *ast.IntegerNode:
		text = fmt.Sprint(n.Value)
	case *ast.StringNode:
		text = n.Value
	default:
		return posError(node, "size must be a number of bytes or a string such as \"200MB\", got %s", node.String())
	}
	// go-humanize parses SI and IEC units ("200MB", "256MiB") so we need no table of our own.
	v, err := humanize.ParseBytes(text)
	if err != nil || v > 1<<62 {
		return posError(node, "bad size %q: use bytes or a unit such as \"200MB\" or \"256MiB\"", text)
	}
	*s = ByteSize(v)
	return nil
}

// batchDefaults are the per-job caps and expectations of each dialect's public API.
func batchDefaults(dialect string) Batch {
	switch dialect {
	case TypeAnthropic:
		return Batch{MaxRequests: 100_000, MaxBytes: 256 << 20}
	case TypeGemini:
		// Inline requests: the whole job travels in one request body of at most 20 MB.
		return Batch{MaxRequests: 100_000, MaxBytes: 20 << 20}
	}
	return Batch{MaxRequests: 50_000, MaxBytes: 200 << 20}
}

// Dialect is the wire format of the provider's API: its type, or for `type: sim` its sim.api.
func (p *Provider) Dialect() string {
	if p.Type == TypeSim {
		if p.Sim != nil && p.Sim.API != "" {
			return p.Sim.API
		}
		return TypeOpenAI
	}
	return p.Type
}

// fillBatch applies the dialect's defaults to the fields b leaves out.
func fillBatch(b *Batch, dialect string) {
	def := batchDefaults(dialect)
	if b.MaxRequests == 0 {
		b.MaxRequests = def.MaxRequests
	}
	if b.MaxBytes == 0 {
		b.MaxBytes = def.MaxBytes
	}
	if b.Turnaround == 0 {
		b.Turnaround = Duration(24 * time.Hour)
	}
	if b.Poll == 0 {
		b.Poll = Duration(30 * time.Second)
	}
}

func (v *validator) checkBatch(path string, p *Provider) {
	b := p.Batch
	fillBatch(b, p.Dialect())
	if d := b.DiscountOrDefault(); d < 0 || d >= 1 {
		v.at(path+".discount", "discount is the fraction of the price saved, at least 0 and below 1 (0.5 = half price), got %v", d)
	}
	v.nonNegative(path, map[string]float64{"max_requests": float64(b.MaxRequests), "max_bytes": float64(b.MaxBytes)})
	for name, n := range b.EnqueuedTokens {
		found := false
		for _, m := range p.Models {
			found = found || (m != nil && m.Name == name)
		}
		if !found {
			v.at(path+".enqueued_tokens", "enqueued_tokens names model %q, which provider %q does not list", name, p.Name)
		}
		if n <= 0 {
			v.at(path+".enqueued_tokens."+name, "enqueued_tokens for %q must be positive (leave the model out for no limit), got %d", name, n)
		}
	}
}

// SimBatch configures the simulator's batch endpoints (sim.batch of a `type: sim` provider).
type SimBatch struct {
	// Turnaround is the time a batch takes from creation to its end; its lines finish evenly over it.
	// 0 = a batch has ended by the first poll.
	Turnaround Duration `yaml:"turnaround"`
	// Window is the completion window: a batch whose turnaround exceeds it expires at the window with
	// its unfinished lines expired. 0 = 24h.
	Window Duration `yaml:"window"`
	// Errored and Expired are the fractions (0..1) of lines answered with a server error or left
	// expired, drawn per line from the batch id and custom_id (so a resubmitted line draws afresh).
	Errored float64 `yaml:"errored"`
	Expired float64 `yaml:"expired"`
	// EnqueuedTokens caps, per model, the tokens (prompt + max_tokens) of unfinished batches; a batch
	// beyond it fails (OpenAI token_limit_exceeded) or is refused with 429. 0 = unlimited.
	EnqueuedTokens int64 `yaml:"enqueued_tokens"`
	// MaxRequests and MaxBytes are the per-job caps the simulator enforces; 0 = unlimited.
	MaxRequests int      `yaml:"max_requests"`
	MaxBytes    ByteSize `yaml:"max_bytes"`
}

func (v *validator) checkSimBatch(path string, b *SimBatch) {
	for k, x := range map[string]float64{"errored": b.Errored, "expired": b.Expired} {
		if x < 0 || x > 1 {
			v.at(path+"."+k, "%s is a fraction of lines between 0 and 1, got %v", k, x)
		}
	}
	if b.Errored+b.Expired > 1 {
		v.at(path, "errored (%v) and expired (%v) add up to more than 1", b.Errored, b.Expired)
	}
	v.nonNegative(path, map[string]float64{"enqueued_tokens": float64(b.EnqueuedTokens),
		"max_requests": float64(b.MaxRequests), "max_bytes": float64(b.MaxBytes)})
}
