// Package retry classifies failed attempts (Classify) and decides how long to wait before the next
// one (Policy.Delay, a pure function in the manner of rclone's pacer). Wait sleeps for such a delay
// while honouring a context.
package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// ErrorType names the kind of failure; its string is what result lines carry in error.type.
type ErrorType string

// The error types. Each is documented with the retry decision Classify attaches to it.
const (
	TypeRateLimit       ErrorType = "rate_limit"       // 429: wait (Retry-After) and retry the same lane
	TypeOverloaded      ErrorType = "overloaded"       // 529 / overloaded_error: retry; the engine may fail over after repeats
	TypeServerError     ErrorType = "server_error"     // 5xx (and 409): retry
	TypeTimeout         ErrorType = "timeout"          // per-attempt deadline or transport timeout: retry
	TypeNetwork         ErrorType = "network"          // connection reset, refused, EOF, DNS: retry
	TypeAuth            ErrorType = "auth"             // 401 or an invalid key: disable the provider
	TypePermission      ErrorType = "permission"       // 403 or region/precondition refusal: disable the provider
	TypeQuotaExhausted  ErrorType = "quota_exhausted"  // billing/quota gone (insufficient_quota, 402, limit: 0): disable the provider
	TypeBadRequest      ErrorType = "bad_request"      // 400/422 and other 4xx: give up on the request
	TypeContextLength   ErrorType = "context_length"   // request too large for the lane: fail over to a larger context
	TypeContentFilter   ErrorType = "content_filter"   // refused by a safety filter: give up
	TypeNotFound        ErrorType = "not_found"        // 404, model missing: fail over to another lane
	TypeCanceled        ErrorType = "canceled"         // the caller's context was canceled: stop
	TypeInvalidResponse ErrorType = "invalid_response" // a 2xx body that could not be parsed: retry
)

// Severity says how far a failure reaches: low = transient, medium = this request (or this attempt's
// server) failed, high = the whole provider is unusable for the rest of the run.
type Severity string

// The severities, from least to most serious.
const (
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// Action is what the engine should do next with the request that failed. The zero Action ("")
// belongs to the zero Class, which Classify returns for a nil error.
type Action string

// The actions.
const (
	// ActionRetry: wait (Policy.Delay) and retry on the same lane while Policy.ShouldRetry allows.
	ActionRetry Action = "retry"
	// ActionFailover: this lane cannot serve the request (model missing); try another lane.
	ActionFailover Action = "failover"
	// ActionFailoverLargerContext: the request is too large for this lane; try a lane with a larger
	// context window (or larger per-request token limit).
	ActionFailoverLargerContext Action = "failover_larger_context"
	// ActionDisableProvider: the provider is unusable (auth, permission, quota) for the rest of the
	// run; fail over to another provider.
	ActionDisableProvider Action = "disable_provider"
	// ActionGiveUp: no lane can help (bad request, content filter, cancellation); record the error.
	ActionGiveUp Action = "give_up"
)

// Class is the classification of one failed attempt.
type Class struct {
	Type       ErrorType
	Retryable  bool // retrying the same request on the same lane may succeed
	Severity   Severity
	Action     Action
	RetryAfter time.Duration // the server's requested wait (Retry-After, RetryInfo); 0 = none given
	Message    string        // err.Error(): provider, model, status and the provider's message
	StatusCode int           // HTTP status, 0 when no response arrived
}

// LaneFailure reports whether the failure says the lane itself is unwell — server_error, overloaded,
// timeout, network or invalid_response — as opposed to being rate limited, canceled, or at fault in
// the request or the account. Circuit breakers and health scores count only these.
func (c Class) LaneFailure() bool {
	switch c.Type {
	case TypeServerError, TypeOverloaded, TypeTimeout, TypeNetwork, TypeInvalidResponse:
		return true
	}
	return false
}

// Classify maps an attempt's error to its Class. A nil error gives the zero Class. The context is
// checked first: anything wrapping context.Canceled is canceled (not retryable) and anything wrapping
// context.DeadlineExceeded, or a transport timeout, is timeout (retryable). Then a *provider.APIError
// anywhere in the chain is classified by connection state, HTTP status and the provider's error
// type, code and message (see the Type* constants). Other transport errors are network; any other
// error (one raised before anything was sent, such as a request the adapter cannot encode) is
// bad_request. Classify never reads the clock and is safe for concurrent use.
func Classify(err error) Class {
	if err == nil {
		return Class{}
	}
	var ae *provider.APIError
	hasAE := errors.As(err, &ae)
	c := classify(err, ae, hasAE)
	c.Message = err.Error()
	if hasAE {
		c.StatusCode = ae.StatusCode
		if c.Retryable {
			c.RetryAfter = ae.RetryAfter
			if c.RetryAfter <= 0 {
				c.RetryAfter = ae.Limits.RetryAfter
			}
			if c.RetryAfter < 0 {
				c.RetryAfter = 0
			}
		}
	}
	return c
}

func classify(err error, ae *provider.APIError, hasAE bool) Class {
	switch {
	case errors.Is(err, context.Canceled):
		return mk(TypeCanceled)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return mk(TypeTimeout)
	case !hasAE:
		if isNetwork(err) {
			return mk(TypeNetwork)
		}
		return mk(TypeBadRequest)
	case ae.Malformed:
		return mk(TypeInvalidResponse)
	case ae.ConnBroken || ae.StatusCode == 0:
		return mk(TypeNetwork)
	}
	return mk(classifyHTTP(ae))
}

// classifyHTTP classifies an error response by status, refined by the provider's type, code and
// message (bodies as OpenAI, Anthropic, Gemini, Groq, Azure and OpenRouter send them).
func classifyHTTP(ae *provider.APIError) ErrorType {
	s := signalsOf(ae)
	switch {
	case s.isOverloaded():
		return TypeOverloaded
	case s.isQuota():
		return TypeQuotaExhausted
	}
	switch st := ae.StatusCode; {
	case st == http.StatusTooManyRequests:
		if s.isRequestTooLarge() {
			// OpenAI/Groq: "Request too large for gpt-4o ... on tokens per min (TPM): Limit 30000,
			// Requested 36000": retrying can never succeed on this lane.
			return TypeContextLength
		}
		return TypeRateLimit
	case st == http.StatusPaymentRequired:
		return TypeQuotaExhausted // OpenRouter "Insufficient credits", Anthropic billing_error
	case st == http.StatusUnauthorized:
		return TypeAuth
	case st == http.StatusForbidden:
		if s.isContentFilter() {
			return TypeContentFilter
		}
		return TypePermission
	case st == http.StatusNotFound:
		return TypeNotFound
	case st == http.StatusRequestTimeout:
		return TypeTimeout
	case st == http.StatusConflict:
		return TypeServerError // retried by the OpenAI and Anthropic SDKs alike
	case st == http.StatusRequestEntityTooLarge:
		return TypeContextLength // Anthropic request_too_large, Groq TPM "Request too large"
	case st == 529:
		return TypeOverloaded
	case st >= 500:
		return TypeServerError
	case st >= 400:
		switch {
		case s.isAuth():
			return TypeAuth // Gemini answers a bad key with 400 API_KEY_INVALID
		case s.isPrecondition():
			return TypePermission // Gemini FAILED_PRECONDITION: free tier not available in the region
		case s.isContextLength():
			return TypeContextLength
		case s.isContentFilter():
			return TypeContentFilter
		}
		return TypeBadRequest
	}
	// 1xx/2xx/3xx reported as an error: the response was not what we can use.
	return TypeInvalidResponse
}

// mk fills in the fixed attributes of a type.
func mk(t ErrorType) Class {
	c := Class{Type: t}
	switch t {
	case TypeRateLimit, TypeOverloaded, TypeTimeout, TypeNetwork:
		c.Retryable, c.Severity, c.Action = true, SeverityLow, ActionRetry
	case TypeServerError, TypeInvalidResponse:
		c.Retryable, c.Severity, c.Action = true, SeverityMedium, ActionRetry
	case TypeAuth, TypePermission, TypeQuotaExhausted:
		c.Severity, c.Action = SeverityHigh, ActionDisableProvider
	case TypeNotFound:
		c.Severity, c.Action = SeverityMedium, ActionFailover
	case TypeContextLength:
		c.Severity, c.Action = SeverityMedium, ActionFailoverLargerContext
	case TypeBadRequest, TypeContentFilter:
		c.Severity, c.Action = SeverityMedium, ActionGiveUp
	case TypeCanceled:
		c.Severity, c.Action = SeverityLow, ActionGiveUp
	}
	return c
}

// signals is the lower-cased text an error response carries: the provider's type and code (exact
// tokens), its message, and the raw body (for fields the adapter did not lift out).
type signals struct {
	typ, code, msg, body string
}

func signalsOf(ae *provider.APIError) signals {
	return signals{
		typ:  strings.ToLower(ae.Type),
		code: strings.ToLower(ae.Code),
		msg:  strings.ToLower(ae.Message),
		body: strings.ToLower(string(ae.Body)),
	}
}

// token reports whether the type or code is one of the given values, or the body carries one of them
// as a JSON string value ("code":"insufficient_quota" has `"insufficient_quota"`).
func (s signals) token(vals ...string) bool {
	for _, v := range vals {
		if s.typ == v || s.code == v || strings.Contains(s.body, `"`+v+`"`) {
			return true
		}
	}
	return false
}

// text reports whether the message or the body contains one of the phrases.
func (s signals) text(phrases ...string) bool {
	for _, p := range phrases {
		if strings.Contains(s.msg, p) || strings.Contains(s.body, p) {
			return true
		}
	}
	return false
}

func (s signals) isOverloaded() bool {
	// Anthropic sends overloaded_error with 529 (and on occasion other statuses); Gemini answers
	// 503 UNAVAILABLE "The model is overloaded. Please try again later."
	return s.token("overloaded_error") || s.text("model is overloaded")
}

// geminiLimitZero matches Gemini's "Quota exceeded for metric: ..., limit: 0, model: ..." (and
// OpenAI's "Limit 0, Used 0"): the project has no quota at all for the model, so waiting never
// helps. "limit: 0.5", "limit: 05" or "limit: 0s" must not match.
var geminiLimitZero = regexp.MustCompile(`\blimit:? ?0(?:[,;\s)"'\\]|$)`)

func (s signals) isQuota() bool {
	// Deliberately not the word "billing" in a message: OpenAI's insufficient_quota and Gemini's
	// ordinary per-minute 429s both say "check your plan and billing details".
	return s.token("insufficient_quota", "enforced_spend_limit_reached", "billing_hard_limit_reached",
		"billing_not_active", "billing_error", "access_terminated") ||
		geminiLimitZero.MatchString(s.msg) || geminiLimitZero.MatchString(s.body) ||
		s.text("credit balance is too low", "insufficient credits")
}

func (s signals) isRequestTooLarge() bool {
	return s.text("request too large")
}

func (s signals) isAuth() bool {
	return s.token("api_key_invalid", "invalid_api_key", "authentication_error", "unauthenticated") ||
		s.text("api key not valid", "invalid api key", "incorrect api key")
}

func (s signals) isPrecondition() bool {
	return s.token("failed_precondition")
}

func (s signals) isContextLength() bool {
	return s.token("context_length_exceeded", "string_above_max_length") || s.text(
		"prompt is too long",                         // Anthropic
		"exceed context limit",                       // Anthropic: input length and max_tokens exceed context limit
		"exceeds the maximum number of tokens",       // Gemini
		"maximum context length",                     // OpenAI, vLLM, DeepSeek, Mistral
		"context window",                             // various OpenAI-compatible servers
		"reduce the length of the messages",          // OpenAI, Groq
		"input is too long", "too many input tokens", // Bedrock-style gateways
	)
}

func (s signals) isContentFilter() bool {
	return s.token("content_filter", "content_policy_violation", "invalid_prompt",
		"responsibleaipolicyviolation", "safety", "prohibited_content", "blocklist") || s.text(
		"content management policy",        // Azure OpenAI
		"flagged as potentially violating", // OpenAI invalid_prompt
		"input was flagged",                // OpenRouter moderation (403)
	)
}

// isTimeout reports a transport-level timeout (net.Error.Timeout, os.ErrDeadlineExceeded,
// http.Client.Timeout).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isNetwork reports a transport failure not wrapped in *provider.APIError.
func isNetwork(err error) bool {
	var ne net.Error
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &ne) || errors.As(err, &op) || errors.As(err, &dns) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}
