// Package adapters builds the provider.Provider of a providers.yaml entry (choosing the OpenAI,
// Anthropic or Gemini adapter by type) and the shared *http.Client each provider sends through.
package adapters

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/anthropic"
	"github.com/llmbatch/llmbatch/pkg/provider/gemini"
	"github.com/llmbatch/llmbatch/pkg/provider/openai"
)

// Placeholder base URLs of a `type: sim` provider without base_url, one per wire API, following
// each API's base_url convention (DESIGN §4). The simulator is reached through an in-process
// RoundTripper, so the host never resolves; it routes on the path (/v1/chat/completions,
// /v1/messages, /v1beta/models/{model}:generateContent).
const (
	SimBaseURLOpenAI    = "http://sim.invalid/v1"
	SimBaseURLAnthropic = "http://sim.invalid"
	SimBaseURLGemini    = "http://sim.invalid/v1beta"
)

// ErrMissingKey is wrapped by New's error when the provider needs an API key and its environment
// variable is unset or empty, so callers can skip the provider with a warning.
var ErrMissingKey = errors.New("api key not set")

// Option adjusts New.
type Option func(*options)

type options struct {
	now    func() time.Time
	budget *provider.Budget
}

// WithNow sets the clock that stamps the RateLimits of every response (time.Now by default).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithBudget sets the Budget that bounds the memory of success bodies. Pass the same one to every
// provider of a run so the bound holds across all of them; without it each adapter has its own.
func WithBudget(b *provider.Budget) Option { return func(o *options) { o.budget = b } }

// New returns the adapter for p: by p.Type (openai, anthropic, gemini), or for `type: sim` by
// p.Sim.API (openai when unset) with base_url defaulting to the matching SimBaseURL* placeholder.
// client is the provider's shared client (see NewHTTPClient; a fresh one sized to
// p.MaxConcurrency when nil). The key is read with getenv (os.Getenv when nil) from p.APIKeyEnv; a
// provider that needs a key (config.Provider.NeedsKey) whose variable is unset is an error naming
// the provider and the variable, wrapping ErrMissingKey. Errors never contain the key. What is
// particular to one API (its URLs, headers, bodies and error wording) lives in its adapter package.
func New(p *config.Provider, client *http.Client, getenv func(string) string, opts ...Option) (provider.Provider, error) {
	if p == nil {
		return nil, errors.New("adapters: nil provider")
	}
	var opt options
	for _, f := range opts {
		f(&opt)
	}
	key := p.APIKey(getenv)
	if p.NeedsKey() && key == "" {
		return nil, fmt.Errorf("provider %q: environment variable %s is not set: %w", p.Name, p.APIKeyEnv, ErrMissingKey)
	}
	if client == nil {
		client = NewHTTPClient(p.MaxConcurrency, nil)
	}

	api, base := p.Type, p.BaseURL
	if p.Type == config.TypeSim {
		api = config.TypeOpenAI
		if p.Sim != nil && p.Sim.API != "" {
			api = p.Sim.API
		}
		if base == "" {
			switch api {
			case config.TypeAnthropic:
				base = SimBaseURLAnthropic
			case config.TypeGemini:
				base = SimBaseURLGemini
			default:
				base = SimBaseURLOpenAI
			}
		}
	}

	o := provider.Options{Name: p.Name, BaseURL: base, APIKey: key, Client: client, Headers: p.Headers,
		Now: opt.now, Budget: opt.budget}
	var (
		prov provider.Provider
		err  error
	)
	switch api {
	case config.TypeOpenAI:
		prov, err = openai.New(o)
	case config.TypeAnthropic:
		prov, err = anthropic.New(o)
	case config.TypeGemini:
		prov, err = gemini.New(o)
	default:
		if p.Type == config.TypeSim {
			return nil, fmt.Errorf("provider %q: unknown sim api %q: want openai, anthropic or gemini", p.Name, api)
		}
		return nil, fmt.Errorf("provider %q: unknown type %q: want openai, anthropic, gemini or sim", p.Name, p.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", p.Name, err)
	}
	return prov, nil
}

// defaultIdleConns is the idle pool kept per host when the provider has no concurrency bound.
const defaultIdleConns = 64

// NewHTTPClient returns the client one provider shares across all its requests. With a nil
// transport it uses a clone of http.DefaultTransport sized to maxConns: MaxConnsPerHost = maxConns
// (unbounded when ≤ 0), MaxIdleConnsPerHost = maxConns (64 when ≤ 0) so a busy provider keeps its
// connections warm; a non-nil transport (such as the simulator's in-process RoundTripper) is used
// as is. The client has no Timeout (the caller puts the per-attempt deadline on the request's
// context) and does not follow redirects: a 3xx comes back as an error instead of re-sending the
// API key headers to another location.
func NewHTTPClient(maxConns int, transport http.RoundTripper) *http.Client {
	if transport == nil {
		transport = newTransport(maxConns)
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func newTransport(maxConns int) *http.Transport {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	idle := maxConns
	if idle <= 0 {
		idle = defaultIdleConns
	}
	t.MaxIdleConnsPerHost = idle
	t.MaxIdleConns = max(t.MaxIdleConns, idle)
	t.MaxConnsPerHost = max(maxConns, 0)
	t.IdleConnTimeout = 90 * time.Second
	return t
}
