package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Call is one HTTP attempt against an LLM API: a JSON POST whose response body is read within
// bounds (see Budget) and turned into an *APIError, classified, when the status is not 2xx. Adapters
// build one per request; a Call is not reused.
type Call struct {
	Provider string      // provider name, for errors
	Model    string      // model id, for errors
	URL      string      // full endpoint URL; never carries the key
	Header   http.Header // request headers, authentication included
	Body     []byte      // JSON request body
	// Secret is the API key. It is scrubbed from every error message and kept error body.
	Secret string
	// ParseError extracts the provider's error fields and class from a non-2xx body (already scrubbed
	// of Secret). Nil means only the generic fallback: the status text, a snippet of the body and
	// the class of the status alone (StatusType).
	ParseError func(status int, body []byte) ErrorInfo
	// RequestsPerDay marks the x-ratelimit-*-requests headers as a daily budget (Groq).
	RequestsPerDay bool
	// Budget bounds the memory of success bodies across requests; nil = a budget of this call alone.
	Budget *Budget
}

// ErrorInfo is what an adapter reads from an error body.
type ErrorInfo struct {
	Type       string
	Code       string
	Message    string
	RetryAfter time.Duration // a delay the body asks for (Gemini RetryInfo); headers take precedence
	// Class is the dialect's classification of the error; "" = by status alone (StatusType).
	Class ErrorType
}

// HTTPResult is a 2xx response: its status, headers, body and the rate limits its headers report.
// Release returns the body's memory grant (and buffer) once the body has been decoded; Body must
// not be used after it.
type HTTPResult struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	Limits     RateLimits
	lease      *lease
}

// Release returns the memory grant the body holds in its Budget. Call it once Body is no longer
// needed; further calls do nothing.
func (r *HTTPResult) Release() { r.lease.release() }

// redacted replaces the secret in s.
const redacted = "[redacted]"

// Do sends the call with ctx using client (http.DefaultClient when nil) and reads the response.
// now stamps the rate limits (time.Now when nil). The per-attempt timeout is ctx's deadline or the
// client's Timeout, whichever comes first.
//
// A 2xx response is returned as *HTTPResult with a nil error; the caller releases it after decoding.
// Anything else is an *APIError with its Class and the Limits parsed from the response headers
// (RetryAfter from retry-after headers, else from the body via ParseError):
//   - a transport failure (refused, reset, EOF, DNS, timeout, cancellation, or a body cut short):
//     StatusCode 0, ConnBroken, class network/timeout/canceled, Err wrapping the cause so
//     errors.Is(err, context.DeadlineExceeded) and errors.Is(err, context.Canceled) hold when ctx ended;
//   - a non-2xx status: StatusCode, Type/Code/Message and class from ParseError; only the first
//     MaxErrorBody bytes of the body are read and kept;
//   - a 2xx body larger than MaxResponseBody: Malformed, invalid_response, wrapping *TooLargeError
//     ("response larger than 32 MiB").
func (c *Call) Do(ctx context.Context, client *http.Client, now func() time.Time) (*HTTPResult, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if now == nil {
		now = time.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Body))
	if err != nil {
		return nil, &APIError{Provider: c.Provider, Model: c.Model, Class: ClassOf(TypeBadRequest),
			Err: c.redactErr(fmt.Errorf("build request: %w", err))}
	}
	if c.Header != nil {
		req.Header = c.Header.Clone()
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := client.Do(req)
	if err != nil {
		return nil, c.brokenError(ctx, RateLimits{ObservedAt: now()}, err)
	}
	defer func() { _ = resp.Body.Close() }()

	limits := ParseRateLimits(resp.Header, now())
	if c.RequestsPerDay && limits.HasRequests {
		limits.RequestsPerDay = true
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Read only what is kept (plus room for a key cut at the edge, so redaction still sees it
		// whole); the rest of a huge error body is never read.
		body, err := io.ReadAll(io.LimitReader(resp.Body, int64(MaxErrorBody+len(c.Secret))))
		if err != nil {
			return nil, c.brokenError(ctx, limits, fmt.Errorf("read response body: %w", err))
		}
		return nil, c.statusError(resp.StatusCode, body, limits)
	}
	budget := c.Budget
	if budget == nil {
		budget = NewBudget(0)
	}
	body, l, err := budget.read(ctx, resp.Body, resp.ContentLength, MaxResponseBody)
	res := &HTTPResult{StatusCode: resp.StatusCode, Header: resp.Header, Body: body, Limits: limits, lease: l}
	var tl *TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, c.MalformedError(res, err)
	case err != nil:
		return nil, c.brokenError(ctx, limits, fmt.Errorf("read response body: %w", err))
	}
	return res, nil
}

// brokenError builds the *APIError of an attempt whose response did not arrive whole.
func (c *Call) brokenError(ctx context.Context, limits RateLimits, err error) *APIError {
	err = withCtxErr(ctx, err)
	t := TransportType(err)
	if t == "" {
		t = TypeNetwork
	}
	cl := ClassOf(t)
	if cl.Retryable {
		cl.RetryAfter = max(limits.RetryAfter, 0)
	}
	return &APIError{Provider: c.Provider, Model: c.Model, ConnBroken: true, Limits: limits,
		RetryAfter: limits.RetryAfter, Class: cl, Err: c.redactErr(err)}
}

// Decode unmarshals a 2xx body into v. A body that is not valid JSON yields a Malformed *APIError.
func (c *Call) Decode(res *HTTPResult, v any) error {
	if err := json.Unmarshal(res.Body, v); err != nil {
		return c.MalformedError(res, fmt.Errorf("decode response: %w", err))
	}
	return nil
}

// MalformedError builds the *APIError for a 2xx response whose body cannot be used: Malformed, class
// invalid_response (retryable), and releases the body's memory grant.
func (c *Call) MalformedError(res *HTTPResult, err error) *APIError {
	body := c.capBody(res.Body)
	res.Release()
	cl := ClassOf(TypeInvalidResponse)
	cl.StatusCode, cl.RetryAfter = res.StatusCode, max(res.Limits.RetryAfter, 0)
	return &APIError{Provider: c.Provider, Model: c.Model, StatusCode: res.StatusCode, Malformed: true,
		Body: body, Limits: res.Limits, RetryAfter: res.Limits.RetryAfter, Class: cl, Err: c.redactErr(err)}
}

// statusError builds the *APIError of a non-2xx response.
func (c *Call) statusError(status int, body []byte, limits RateLimits) *APIError {
	if c.Secret != "" {
		body = bytes.ReplaceAll(body, []byte(c.Secret), []byte(redacted))
	}
	var info ErrorInfo
	if c.ParseError != nil {
		info = c.ParseError(status, body)
	}
	if info.Message == "" {
		info.Message = fallbackMessage(status, body)
	}
	if limits.RetryAfter == 0 {
		limits.RetryAfter = info.RetryAfter
	}
	if info.Class == "" {
		info.Class = StatusType(status)
	}
	cl := ClassOf(info.Class)
	cl.StatusCode = status
	if cl.Retryable {
		cl.RetryAfter = max(limits.RetryAfter, 0)
	}
	return &APIError{
		Provider:   c.Provider,
		Model:      c.Model,
		StatusCode: status,
		Type:       info.Type,
		Code:       info.Code,
		Message:    c.redact(info.Message),
		RetryAfter: limits.RetryAfter,
		Body:       c.capBody(body),
		Limits:     limits,
		Class:      cl,
	}
}

// fallbackMessage describes an error body no parser understood: the status text and a one-line
// snippet of the body.
func fallbackMessage(status int, body []byte) string {
	msg := http.StatusText(status)
	if msg == "" {
		msg = fmt.Sprintf("status %d", status)
	}
	snippet := strings.Join(strings.Fields(string(body)), " ")
	if len(snippet) > 200 {
		snippet = snippet[:200] + "..."
	}
	if snippet != "" {
		msg += ": " + snippet
	}
	return msg
}

// UserAgent is the User-Agent the adapters send.
const UserAgent = "llmbatch"

// NewHeader returns the request headers every adapter starts from (JSON content type and accept,
// User-Agent) with extra (providers.yaml `headers`) applied on top. Adapters set authentication
// afterwards, so extra cannot replace it.
func NewHeader(extra map[string]string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("User-Agent", UserAgent)
	for k, v := range extra {
		h.Set(k, v)
	}
	return h
}

func (c *Call) capBody(b []byte) []byte {
	if c.Secret != "" {
		b = b[:min(len(b), MaxErrorBody+len(c.Secret))] // a key cut at the edge is still replaced whole
		b = bytes.ReplaceAll(b, []byte(c.Secret), []byte(redacted))
	}
	if len(b) > MaxErrorBody {
		b = b[:MaxErrorBody]
	}
	return bytes.Clone(b)
}

func (c *Call) redact(s string) string {
	if c.Secret == "" {
		return s
	}
	return strings.ReplaceAll(s, c.Secret, redacted)
}

func (c *Call) redactErr(err error) error {
	if c.Secret == "" || err == nil || !strings.Contains(err.Error(), c.Secret) {
		return err
	}
	return &redactedError{err: err, secret: c.Secret}
}

// redactedError hides a secret in its cause's message while keeping errors.Is/As working.
type redactedError struct {
	err    error
	secret string
}

func (e *redactedError) Error() string { return strings.ReplaceAll(e.err.Error(), e.secret, redacted) }
func (e *redactedError) Unwrap() error { return e.err }

// withCtxErr makes sure a transport error caused by ctx ending matches ctx.Err() under errors.Is.
func withCtxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}

// NormalizeBaseURL checks that raw is an absolute http(s) URL and returns it without a trailing
// slash, or def when raw is empty.
func NormalizeBaseURL(raw, def string) (string, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bad base_url %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("bad base_url %q: want an absolute http or https URL", raw)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("bad base_url %q: credentials and query strings are not allowed", u.Redacted())
	}
	return strings.TrimRight(raw, "/"), nil
}
