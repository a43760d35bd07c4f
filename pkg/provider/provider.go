// Package provider defines the neutral request/response types every LLM API adapter translates to and
// from, the rate-limit state parsed from each response, the typed *APIError and the Class every
// adapter attaches to it, and the one adapter skeleton (Adapter: an Endpoint plus a dialect's Codec,
// sending through Call with success bodies bounded by a shared Budget). The dialects live in the
// subpackages openai, anthropic and gemini, each an Endpoint, a Codec and a Vocabulary of its
// error wording; adding a dialect touches one package.
package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/pkg/request"
)

// Provider sends one chat request to one API. Implementations make exactly one HTTP attempt per call
// (retries belong to the caller), are safe for concurrent use, and honour ctx for cancellation and the
// per-attempt deadline.
type Provider interface {
	// Name is the provider's name from providers.yaml.
	Name() string
	// Complete sends req. On an HTTP or transport failure, or a success body without the fields of
	// its API, it returns a nil *Response and an error that is (or wraps) *APIError carrying the
	// Class the adapter gave it; ctx errors are returned wrapped so errors.Is(err, context.Canceled)
	// and errors.Is(err, context.DeadlineExceeded) hold.
	Complete(ctx context.Context, req *Request) (*Response, error)
}

// Request is what an adapter sends: one model, the messages, and the generation parameters.
type Request struct {
	Model          string
	Messages       []request.Message
	MaxTokens      int // 0 = the API's default
	Temperature    *float64
	TopP           *float64
	Stop           []string
	ResponseFormat json.RawMessage // OpenAI shape; adapters translate or ignore where unsupported
	Tools          json.RawMessage // OpenAI shape; adapters translate where supported
	// Extra holds OpenAI chat parameters passed through as written (request.PassThroughFields): the
	// OpenAI-compatible adapter sends them, the others translate tool_choice and ignore the rest.
	Extra map[string]json.RawMessage
	// Reasoning marks a reasoning model: the OpenAI adapter sends max_completion_tokens instead of
	// max_tokens and leaves out temperature/top_p.
	Reasoning bool
}

// Usage is the token accounting an API reports for one response.
type Usage struct {
	InputTokens     int `json:"input_tokens"`
	OutputTokens    int `json:"output_tokens"`
	CachedTokens    int `json:"cached_tokens,omitempty"`
	ReasoningTokens int `json:"reasoning_tokens,omitempty"`
}

// Response is a successful completion.
type Response struct {
	Content      string          // the generated text (text parts joined)
	ToolCalls    json.RawMessage // OpenAI-shaped tool calls, when the model called tools
	FinishReason string          // normalised: stop | length | tool_calls | content_filter | other values as sent
	Usage        Usage
	Model        string // the model id the API says it used
	RequestID    string // the API's request id header, when sent
	Limits       RateLimits
}

// RateLimits is the provider's rate-limit state as reported on one response (success or error).
// A zero field means "not reported". Reset durations are relative to ObservedAt.
type RateLimits struct {
	ObservedAt time.Time

	LimitRequests     int
	RemainingRequests int
	ResetRequests     time.Duration // time until the request budget is fully restored
	LimitTokens       int
	RemainingTokens   int
	ResetTokens       time.Duration
	// HasRequests / HasTokens say whether the request or token headers were present at all
	// (a remaining count of 0 is meaningful).
	HasRequests bool
	HasTokens   bool
	// RequestsPerDay is set when the request headers describe a daily budget (Groq).
	RequestsPerDay bool

	RetryAfter time.Duration // from retry-after / retry-after-ms / Gemini RetryInfo; 0 = absent
}

// APIError is a failed attempt: an HTTP error status, a broken connection, or an unreadable body.
type APIError struct {
	Provider   string
	Model      string
	StatusCode int    // 0 when no response arrived
	Type       string // provider error type, e.g. "rate_limit_error", "RESOURCE_EXHAUSTED", "insufficient_quota"
	Code       string // provider error code, when distinct from Type
	Message    string // provider's message, never containing the API key
	RetryAfter time.Duration
	// ConnBroken is set when the connection failed before a complete response (reset, EOF, DNS, timeout
	// at the transport); such a request may or may not have been processed.
	ConnBroken bool
	// Malformed is set when a 2xx response body could not be parsed.
	Malformed bool
	Body      []byte // the raw response body, capped at MaxErrorBody bytes
	Limits    RateLimits
	Err       error // the underlying transport or decode error, if any
	// Class is the adapter's classification, made when it parsed the response (see ErrorClass).
	Class Class
}

// ErrorClass returns the error's class: Class as the adapter attached it, or, for an APIError built
// without one, the class its fields imply (Malformed: invalid_response; no response: the transport
// class of Err, else network; otherwise the status alone). RetryAfter is the class's, else the
// error's, else its Limits', kept only for a retryable class and never negative; StatusCode is the
// error's. Message is left empty (the caller knows the
// whole error chain's text).
func (e *APIError) ErrorClass() Class {
	c := e.Class
	if c.Type == "" {
		var t ErrorType
		switch {
		case e.Malformed:
			t = TypeInvalidResponse
		case e.ConnBroken || e.StatusCode == 0:
			if t = TransportType(e.Err); t == "" {
				t = TypeNetwork
			}
		default:
			t = StatusType(e.StatusCode)
		}
		c = ClassOf(t)
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = e.RetryAfter
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = e.Limits.RetryAfter
	}
	c.Message = ""
	c.StatusCode = e.StatusCode
	if !c.Retryable || c.RetryAfter < 0 {
		c.RetryAfter = 0
	}
	return c
}

func (e *APIError) Error() string {
	switch {
	case e.StatusCode == 0 && e.Err != nil:
		return fmt.Sprintf("%s: %s: %v", e.Provider, e.Model, e.Err)
	case e.Malformed:
		return fmt.Sprintf("%s: %s: malformed response: %v", e.Provider, e.Model, e.Err)
	case e.Type != "":
		return fmt.Sprintf("%s: %s: HTTP %d %s: %s", e.Provider, e.Model, e.StatusCode, e.Type, e.Message)
	}
	return fmt.Sprintf("%s: %s: HTTP %d: %s", e.Provider, e.Model, e.StatusCode, e.Message)
}

// Unwrap returns the underlying transport or decode error.
func (e *APIError) Unwrap() error { return e.Err }
