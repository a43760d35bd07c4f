// Package retry classifies failed attempts (Classify) and decides how long to wait before the next
// one (Policy.Delay, a pure function in the manner of rclone's pacer). Wait sleeps for such a delay
// while honouring a context.
package retry

import (
	"errors"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// ErrorType names the kind of failure; its string is what result lines carry in error.type. The
// types and their fixed attributes are defined with the adapters (provider.ErrorType), which attach
// a Class to every error they return.
type ErrorType = provider.ErrorType

// The error types (see provider.ErrorType).
const (
	TypeRateLimit       = provider.TypeRateLimit
	TypeOverloaded      = provider.TypeOverloaded
	TypeServerError     = provider.TypeServerError
	TypeTimeout         = provider.TypeTimeout
	TypeNetwork         = provider.TypeNetwork
	TypeAuth            = provider.TypeAuth
	TypePermission      = provider.TypePermission
	TypeQuotaExhausted  = provider.TypeQuotaExhausted
	TypeBadRequest      = provider.TypeBadRequest
	TypeContextLength   = provider.TypeContextLength
	TypeContentFilter   = provider.TypeContentFilter
	TypeNotFound        = provider.TypeNotFound
	TypeCanceled        = provider.TypeCanceled
	TypeInvalidResponse = provider.TypeInvalidResponse
)

// Severity says how far a failure reaches (see provider.Severity).
type Severity = provider.Severity

// The severities, from least to most serious.
const (
	SeverityLow    = provider.SeverityLow
	SeverityMedium = provider.SeverityMedium
	SeverityHigh   = provider.SeverityHigh
)

// Action is what the engine should do next with the request that failed (see provider.Action).
type Action = provider.Action

// The actions (see provider.Action).
const (
	ActionRetry                 = provider.ActionRetry
	ActionFailover              = provider.ActionFailover
	ActionFailoverLargerContext = provider.ActionFailoverLargerContext
	ActionDisableProvider       = provider.ActionDisableProvider
	ActionGiveUp                = provider.ActionGiveUp
)

// Class is the classification of one failed attempt (see provider.Class); LaneFailure says whether
// breakers and health scores count it.
type Class = provider.Class

// Classify returns the Class of an attempt's error. It never parses a body: the class is the one the
// adapter attached when it parsed the response (provider.APIError.ErrorClass). A nil error gives the
// zero Class. The context is checked first: anything wrapping context.Canceled is canceled (not
// retryable) and anything wrapping context.DeadlineExceeded, or a transport timeout, is timeout
// (retryable), whatever the adapter saw. Other transport errors outside an *APIError are network; any
// other error (one raised before anything was sent, such as a request the adapter cannot encode) is
// bad_request. Message is err.Error(). Classify never reads the clock and is safe for concurrent use.
func Classify(err error) Class {
	if err == nil {
		return Class{}
	}
	var c Class
	var ae *provider.APIError
	switch t := provider.TransportType(err); {
	case t == TypeCanceled || t == TypeTimeout:
		c = provider.ClassOf(t)
		if errors.As(err, &ae) {
			c.StatusCode = ae.StatusCode
			if c.Retryable {
				c.RetryAfter = max(ae.RetryAfter, ae.Limits.RetryAfter, 0)
			}
		}
	case errors.As(err, &ae):
		c = ae.ErrorClass()
	case t == TypeNetwork:
		c = provider.ClassOf(TypeNetwork)
	default:
		c = provider.ClassOf(TypeBadRequest)
	}
	c.Message = err.Error()
	return c
}
