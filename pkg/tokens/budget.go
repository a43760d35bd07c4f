package tokens

import (
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/request"
)

// Expected output tokens of a request without max_tokens, by its category. They are typical
// completion lengths, not limits: a label or an extracted field (tiny) is a few dozen tokens; an
// ordinary answer (small) a few paragraphs; a complex answer or a piece of code (large) a page.
// Reasoning models also spend hidden reasoning tokens, billed as output and counted against the
// context window, typically well over a thousand before the visible answer, hence 2048.
const (
	DefaultOutputTiny      = 64
	DefaultOutputSmall     = 256
	DefaultOutputLarge     = 512
	DefaultOutputReasoning = 2048
)

// OutputTokens returns the output tokens to plan for a request of category cat: its max_tokens when
// set (an upper bound, which for reasoning models already includes their reasoning tokens), else the
// category's default above (Small's for Unknown).
func OutputTokens(req *request.Request, cat model.Category) int {
	if req != nil && req.MaxTokens > 0 {
		return req.MaxTokens
	}
	switch cat {
	case model.Tiny:
		return DefaultOutputTiny
	case model.Large:
		return DefaultOutputLarge
	case model.Reasoning:
		return DefaultOutputReasoning
	}
	return DefaultOutputSmall
}

// Cost returns the price in USD of in input and out output tokens on model m, from its per-million
// prices. It does not consult m.Free: a free-tier model should be configured with zero prices, and a
// non-zero price only makes a budget check more cautious. A nil model costs nothing.
func Cost(m *config.Model, in, out int) float64 {
	if m == nil {
		return 0
	}
	return (float64(in)*m.InputPerMTok + float64(out)*m.OutputPerMTok) / 1e6
}

// Fits reports whether a request of in prompt tokens expecting out output tokens fits model m: in+out
// within its context window (model.ContextWindow: the configured one, else the catalogue's, else
// model.DefaultContextWindow) and out within its max_output_tokens when that is set. A nil model fits
// nothing.
func Fits(m *config.Model, in, out int) bool {
	if m == nil {
		return false
	}
	if m.MaxOutputTokens > 0 && out > m.MaxOutputTokens {
		return false
	}
	return in+out <= model.ContextWindow(m.Name, m.ContextWindow)
}
