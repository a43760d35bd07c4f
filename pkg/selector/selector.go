// Package selector chooses which (provider, model) lane serves each prompt, one prompt at a time
// (Choose) or across a whole batch (Plan, Planner), under the selection policy of DESIGN §1:
// --prefer cost (cheapest capable lane, free tier first), --prefer speed (capable lanes of the prompt's
// category share the work in proportion to their capacity) and --deadline (cost, adding lanes of the
// same category until the estimated wall time fits).
//
// The package is pure: it takes a snapshot (lanes with their availability and daily quota left, and
// items with their token counts) and returns a plan. It does no I/O and never reads the clock.
package selector

import (
	"fmt"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/model"
)

// Prefer is the selection policy.
type Prefer int

// The policies of DESIGN §1. The zero value is PreferCost, the default.
const (
	PreferCost  Prefer = iota // each prompt to its cheapest capable lane, free tier first
	PreferSpeed               // capable lanes of the prompt's category share the work by capacity
)

// String returns the flag spelling of the policy ("cost" or "speed").
func (p Prefer) String() string {
	if p == PreferSpeed {
		return "speed"
	}
	return "cost"
}

// ParsePrefer parses a --prefer value: "cost" (or empty) or "speed", case-insensitively.
func ParsePrefer(s string) (Prefer, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "cost":
		return PreferCost, nil
	case "speed":
		return PreferSpeed, nil
	}
	return PreferCost, fmt.Errorf("unknown --prefer value %q (want cost or speed)", s)
}

// Encoding indexes an item's input token counts. Token counts differ per tokenizer, so an Item carries
// one count per encoding and each Lane reads the count of its own encoding.
type Encoding uint8

// The encodings a model may declare in providers.yaml; EncEstimate is for models without one.
const (
	EncEstimate  Encoding = iota // no tokenizer declared: a character-based estimate
	EncCL100K                    // cl100k_base
	EncO200K                     // o200k_base
	NumEncodings                 // number of encodings, the length of Item.InputTokens
)

// EncodingOf maps an encoding name from providers.yaml to its index; unknown names and "" give EncEstimate.
func EncodingOf(name string) Encoding {
	switch name {
	case "cl100k_base":
		return EncCL100K
	case "o200k_base":
		return EncO200K
	}
	return EncEstimate
}

// Name returns the encoding's providers.yaml name, "" for EncEstimate.
func (e Encoding) Name() string {
	switch e {
	case EncCL100K:
		return "cl100k_base"
	case EncO200K:
		return "o200k_base"
	}
	return ""
}

// Limits are a lane's published rate limits; 0 means unknown (or unlimited).
type Limits struct {
	RPM int // requests per minute
	TPM int // tokens (input + output) per minute
	RPD int // requests per day
	TPD int // tokens per day

	// Window and Quantum are how the provider enforces RPM and TPM (config.Model.Window): a window
	// admits its share at once, a quantum only its own share; both 0 = unknown.
	Window, Quantum time.Duration
}

// Lane is one (provider, model) pair that can serve prompts, with everything the selector needs to
// rank it. The run engine refreshes Available and the daily counters from its live state.
type Lane struct {
	Provider string        // provider name from providers.yaml
	Model    *config.Model // the configured model; may be nil in tests that only need the fields below
	Name     string        // the model id sent to the API

	Category        model.Category // Unknown is ranked as Small
	ContextWindow   int            // tokens; 0 = unknown (everything fits)
	MaxOutputTokens int            // 0 = unknown (any output fits)
	InputPerMTok    float64        // USD per million input tokens
	OutputPerMTok   float64        // USD per million output tokens
	Free            bool           // free tier: preferred over paid lanes (configure its prices as 0)
	Encoding        Encoding       // which of Item.InputTokens this lane's API will count
	Limits          Limits

	// Concurrency is how many requests this lane may have in flight (the provider's max_concurrency,
	// else the global concurrency); it bounds the wall time together with a typical latency.
	// 0 means DefaultConcurrency.
	Concurrency int

	// Available is false when the lane cannot be used at all; Unavailable then says why
	// ("provider key not set", "disabled", "circuit breaker open").
	Available   bool
	Unavailable string

	// DailyRequestsLeft and DailyTokensLeft are what is left of today's RPD/TPD quota; -1 = unknown
	// or unlimited. The selector never assigns beyond them.
	DailyRequestsLeft int64
	DailyTokensLeft   int64
}

// DefaultConcurrency is the in-flight bound assumed for a lane whose Concurrency is 0.
const DefaultConcurrency = 16

// NewLane builds an available lane from a configured provider and model. The category is the model's
// configured one (Unknown when absent: callers that know better, e.g. from the model catalogue, set
// Category and ContextWindow afterwards); the daily counters start at the configured RPD/TPD, or -1
// when those are 0.
func NewLane(p *config.Provider, m *config.Model) *Lane {
	cat, _ := model.ParseCategory(m.Category)
	l := &Lane{
		Provider: p.Name, Model: m, Name: m.Name,
		Category: cat, ContextWindow: m.ContextWindow, MaxOutputTokens: m.MaxOutputTokens,
		InputPerMTok: m.InputPerMTok, OutputPerMTok: m.OutputPerMTok, Free: m.Free,
		Encoding:  EncodingOf(m.Encoding),
		Limits:    Limits{RPM: m.RPM, TPM: m.TPM, RPD: m.RPD, TPD: m.TPD},
		Available: true, Concurrency: p.MaxConcurrency,
		DailyRequestsLeft: -1, DailyTokensLeft: -1,
	}
	l.Limits.Window, l.Limits.Quantum = config.EnforcementFor(p, m)
	if m.RPD > 0 {
		l.DailyRequestsLeft = int64(m.RPD)
	}
	if m.TPD > 0 {
		l.DailyTokensLeft = int64(m.TPD)
	}
	return l
}

// String returns "provider/model".
func (l *Lane) String() string { return l.Provider + "/" + l.Name }

// Cost returns the USD cost of a prompt with in input and out output tokens on this lane, from its
// per-million prices (like tokens.Cost, it does not consult Free: free lanes are configured at 0).
func (l *Lane) Cost(in, out int) float64 {
	return (float64(in)*l.InputPerMTok + float64(out)*l.OutputPerMTok) / 1e6
}

// rank is the lane's category on the ladder (Unknown counts as Small).
func (l *Lane) rank() model.Category {
	if l.Category == model.Unknown {
		return model.Small
	}
	return l.Category
}

// Item is one prompt as the selector sees it: small, so a planner can hold many.
type Item struct {
	Index      int            // position in the batch (0-based)
	ID         string         // custom_id
	Category   model.Category // from the analyser or the request's hint; Unknown = no constraint
	Complexity float64        // the analyser's score, carried for display

	// InputTokens is the prompt's input token count as each encoding counts it (chat overhead
	// included), indexed by Encoding; Exact tells whether that count is exact. Fill at least the
	// encodings the lanes use; a 0 count falls back to the largest count given.
	InputTokens [NumEncodings]int
	Exact       [NumEncodings]bool

	OutputTokens    int // expected output tokens, for cost and rate-limit estimates
	MaxOutputTokens int // output tokens the request may produce (its max_tokens); 0 = OutputTokens

	PinModel    string // the request's own model ("" = free choice); Options.PinModel overrides it
	PinProvider string // Options.PinProvider overrides it
}

// Input returns the item's input tokens on lane l and whether the count is exact.
func (it *Item) Input(l *Lane) (int, bool) {
	n := it.InputTokens[l.Encoding]
	if n > 0 {
		return n, it.Exact[l.Encoding]
	}
	for _, v := range it.InputTokens {
		n = max(n, v)
	}
	return n, false
}

// reserve is the output the lane must allow for: max_tokens when given, else the expected output.
func (it *Item) reserve() int {
	if it.MaxOutputTokens > 0 {
		return it.MaxOutputTokens
	}
	return it.OutputTokens
}

// Options is the selection policy.
type Options struct {
	Prefer   Prefer
	Deadline time.Duration // with PreferCost: add lanes until the estimated wall time fits; 0 = none

	PinModel    string // --model: restricts every prompt to lanes of this model (overrides the request's)
	PinProvider string // --provider: restricts every prompt to this provider's lanes

	// Latency and OutputTokensPerSecond describe a typical request, used to bound wall time by a
	// lane's concurrency and to guess it when a lane has no known limits. Zero values mean
	// DefaultLatency and DefaultOutputTokensPerSecond.
	Latency               time.Duration
	OutputTokensPerSecond float64
}

// Typical request timing assumed when Options leaves it out.
const (
	DefaultLatency               = 800 * time.Millisecond
	DefaultOutputTokensPerSecond = 80.0
)

// ExclusionKind classifies why a lane was ruled out for a prompt.
type ExclusionKind uint8

// The reasons a lane cannot serve a prompt.
const (
	ExclPinned      ExclusionKind = iota + 1 // another model or provider is pinned
	ExclUnavailable                          // key not set, disabled, breaker open
	ExclDaily                                // today's RPD/TPD quota is used up (or would be)
	ExclContext                              // input + output exceed the context window
	ExclMaxOutput                            // the requested output exceeds max_output_tokens
	ExclCategory                             // capable, but of a category the prompt does not use (Explain only)
)

// Exclusion is one lane ruled out for a prompt, with a human reason such as
// "context too small (needs 150000, has 128000)".
type Exclusion struct {
	Lane   *Lane
	Kind   ExclusionKind
	Reason string
}

// Choice is the selection for one prompt.
type Choice struct {
	// Lanes are the candidates in order: the first is the primary, the rest are failover alternatives.
	// Empty when Err is set.
	Lanes     []*Lane
	Requested model.Category // the prompt's own category (Unknown when it had none)
	Category  model.Category // the category of the lanes actually used
	Escalated bool           // Category is above Requested because no lane of Requested could serve it
	// Why explains the choice: "free tier", "cheapest capable", "pinned to model X",
	// "escalated from small: no small lane fits 150000 tokens of context", ...
	Why string
	// Excluded are the lanes ruled out and why. From Explain: every configured lane that is neither
	// the primary nor an alternative (pinned out, unavailable, too small, daily limit used, or of a
	// category the prompt does not use). From the planner's own decisions: those of the categories
	// tried, and pinned-out lanes.
	Excluded []Exclusion
	// Err says why no lane can serve the prompt at all; nil when Lanes is not empty.
	Err error
}

// Choose selects the ordered candidate lanes for one prompt from a snapshot of lanes, as a fresh
// Planner would for the first prompt of a batch. It allocates; use a Planner for large batches.
func Choose(item Item, lanes []*Lane, opts Options) Choice {
	return NewPlanner(lanes, opts).Explain(&item)
}
