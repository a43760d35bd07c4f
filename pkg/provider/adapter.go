package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Codec is one API dialect's wire format: the request body it sends, the success body it reads and
// the error bodies it understands. Implementations are safe for concurrent use.
type Codec interface {
	// Encode returns the JSON body of req. An error means the request cannot be expressed in the
	// dialect; nothing is sent.
	Encode(req *Request) ([]byte, error)
	// Decode reads a 2xx body. A body without the fields of the API (null, {}, [], a foreign API's
	// shape, missing or mistyped fields) is an error, which the adapter reports as invalid_response.
	// Limits and, when the Endpoint names a header that carries it, RequestID are filled in by the
	// adapter; an empty Model becomes the requested model.
	Decode(body []byte) (*Response, error)
	// ParseError reads a non-2xx body (already scrubbed of the key): the provider's type, code and
	// message, a Retry-After the body asks for, and the Class of the error in this dialect.
	ParseError(status int, body []byte) ErrorInfo
}

// Endpoint is where and how a dialect is reached: the URL of a model, the authentication header and
// the fixed headers it sends.
type Endpoint struct {
	DefaultName    string // provider name when Options.Name is empty
	DefaultBaseURL string // base URL when Options.BaseURL is empty
	// URL returns the endpoint of model under base (absolute, no trailing slash).
	URL func(base, model string) string
	// Header holds the dialect's own headers (anthropic-version); Options.Headers may replace them.
	Header http.Header
	// AuthHeader and AuthPrefix send the key as AuthHeader: AuthPrefix+key, set after
	// Options.Headers so those cannot replace it. No header is sent without a key.
	AuthHeader, AuthPrefix string
	// RequestIDHeader names the response header carrying the request id; it wins over the body's.
	RequestIDHeader string
}

// Options configures an adapter; every dialect takes the same.
type Options struct {
	Name    string       // provider name from providers.yaml, used in errors; Endpoint.DefaultName when empty
	BaseURL string       // Endpoint.DefaultBaseURL when empty
	APIKey  string       // sent as the Endpoint's auth header; none when empty (Ollama, vLLM)
	Client  *http.Client // shared by all requests of the provider; http.DefaultClient when nil
	Headers map[string]string
	Now     func() time.Time // stamps RateLimits; time.Now when nil
	// Budget bounds the memory of success bodies; share one across all adapters of a run. Nil = a
	// Budget of this adapter alone (NewBudget(0)).
	Budget *Budget
	// RequestsPerDay marks the x-ratelimit-*-requests headers as a daily budget (Groq; the OpenAI
	// dialect also sets it for a groq.com base URL).
	RequestsPerDay bool
	// DefaultMaxTokens is max_tokens for requests without one, where the API requires it (Anthropic).
	DefaultMaxTokens int
}

// Adapter is a Provider made of an Endpoint and a Codec: one HTTP attempt per Complete call. It is
// safe for concurrent use.
type Adapter struct {
	name   string
	base   string
	key    string
	client *http.Client
	header http.Header
	now    func() time.Time
	budget *Budget
	daily  bool
	ep     Endpoint
	codec  Codec
}

var _ Provider = (*Adapter)(nil)

// NewAdapter returns the adapter of ep and codec for o, or an error naming the provider when the
// base URL is not an absolute http(s) URL.
func NewAdapter(ep Endpoint, codec Codec, o Options) (*Adapter, error) {
	name := o.Name
	if name == "" {
		name = ep.DefaultName
	}
	base, err := NormalizeBaseURL(o.BaseURL, ep.DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	h := NewHeader(nil)
	for k, v := range ep.Header {
		h[k] = append([]string(nil), v...)
	}
	for k, v := range o.Headers {
		h.Set(k, v)
	}
	if o.APIKey != "" {
		h.Set(ep.AuthHeader, ep.AuthPrefix+o.APIKey)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	budget := o.Budget
	if budget == nil {
		budget = NewBudget(0)
	}
	return &Adapter{name: name, base: base, key: o.APIKey, client: o.Client, header: h, now: now,
		budget: budget, daily: o.RequestsPerDay, ep: ep, codec: codec}, nil
}

// Name returns the provider name.
func (a *Adapter) Name() string { return a.name }

// Complete encodes req, sends it (one attempt, see Call.Do) and decodes the answer. A request the
// dialect cannot express is an error naming provider and model, with nothing sent; every other
// failure is a classified *APIError, a success body without the fields of the API included
// (Malformed, invalid_response).
func (a *Adapter) Complete(ctx context.Context, req *Request) (*Response, error) {
	body, err := a.codec.Encode(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", a.name, req.Model, err)
	}
	call := &Call{Provider: a.name, Model: req.Model, URL: a.ep.URL(a.base, req.Model), Header: a.header,
		Body: body, Secret: a.key, ParseError: a.codec.ParseError, RequestsPerDay: a.daily, Budget: a.budget}
	res, err := call.Do(ctx, a.client, a.now)
	if err != nil {
		return nil, err
	}
	out, err := DecodeWith(a.codec, res.Body, req.Model)
	if err != nil {
		return nil, call.MalformedError(res, err)
	}
	res.Release()
	out.Limits = res.Limits
	if a.ep.RequestIDHeader != "" {
		if id := res.Header.Get(a.ep.RequestIDHeader); id != "" {
			out.RequestID = id
		}
	}
	return out, nil
}

// DecodeWith decodes a success body with codec; model stands in when the body names none. It is how
// Complete reads a body, for callers that get bodies by other ways (provider batch APIs).
func DecodeWith(codec Codec, body []byte, model string) (*Response, error) {
	out, err := codec.Decode(body)
	if err != nil {
		return nil, err
	}
	if out.Model == "" {
		out.Model = model
	}
	return out, nil
}

// DecodeObject unmarshals a success body into v after checking it is a JSON object, so null, [],
// a string or a number are errors rather than a zero v.
func DecodeObject(body []byte, v any) error {
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("response is not a JSON object: %.40q", body)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// EncodeBody marshals a dialect's request body v built with error err (a build error is returned
// as is), so Encode reads `return provider.EncodeBody(buildRequest(req))`.
func EncodeBody(v any, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}
