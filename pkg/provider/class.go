package provider

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// ErrorType names the kind of failure; its string is what result lines carry in error.type.
type ErrorType string

// The error types. Each is documented with the decision ClassOf attaches to it.
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
	TypeInvalidResponse ErrorType = "invalid_response" // a 2xx body without the fields of its API, or too large: retry
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
// belongs to the zero Class (no failure).
type Action string

// The actions.
const (
	// ActionRetry: wait and retry on the same lane while the retry policy allows.
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

// Class is the classification of one failed attempt. Adapters attach it to every *APIError they
// return (APIError.Class), so retry, breakers and health read it instead of parsing bodies again.
type Class struct {
	Type       ErrorType
	Retryable  bool // retrying the same request on the same lane may succeed
	Severity   Severity
	Action     Action
	RetryAfter time.Duration // the server's requested wait (Retry-After, RetryInfo); 0 = none given
	Message    string        // the error's text: provider, model, status and the provider's message
	StatusCode int           // HTTP status, 0 when no response arrived
}

// ClassOf returns the Class of t with its fixed attributes (Retryable, Severity, Action) and no
// per-error fields. An unknown or empty t gives the zero Class.
func ClassOf(t ErrorType) Class {
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
	default:
		return Class{}
	}
	return c
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

// StatusType is the classification of an HTTP error status alone, for a body no dialect refines:
// 429 rate_limit, 402 quota_exhausted, 401 auth, 403 permission, 404 not_found, 408 timeout, 409 and
// 5xx server_error (409 is retried by the OpenAI and Anthropic SDKs alike), 413 context_length, 529
// overloaded, other 4xx bad_request, anything else (a 1xx/2xx/3xx reported as a failure)
// invalid_response.
func StatusType(status int) ErrorType {
	if t, ok := statusTypes[status]; ok {
		return t
	}
	switch {
	case status >= 500:
		return TypeServerError
	case status >= 400:
		return TypeBadRequest
	}
	return TypeInvalidResponse
}

// statusTypes are the statuses StatusType maps one by one (a read-only table).
var statusTypes = map[int]ErrorType{
	http.StatusTooManyRequests:       TypeRateLimit,
	http.StatusPaymentRequired:       TypeQuotaExhausted,
	http.StatusUnauthorized:          TypeAuth,
	http.StatusForbidden:             TypePermission,
	http.StatusNotFound:              TypeNotFound,
	http.StatusRequestTimeout:        TypeTimeout,
	http.StatusConflict:              TypeServerError,
	http.StatusRequestEntityTooLarge: TypeContextLength,
	529:                              TypeOverloaded,
}

// TransportType classifies an error raised before a complete response arrived: canceled when it
// wraps context.Canceled, timeout for context.DeadlineExceeded or a transport timeout, network for
// any other transport failure (reset, refused, EOF, DNS), and "" when err is none of these.
func TransportType(err error) ErrorType {
	var ne net.Error
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.Is(err, context.Canceled):
		return TypeCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return TypeTimeout
	case errors.As(err, &ne), errors.As(err, &op), errors.As(err, &dns),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return TypeNetwork
	}
	return ""
}
