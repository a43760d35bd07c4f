// Package config loads and validates providers.yaml: the providers, their models, prices and limits,
// and the run defaults (concurrency, timeouts, retry and breaker policy).
package config

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/llmbatch/llmbatch/pkg/redact"
)

// Provider types understood by the adapters.
const (
	TypeOpenAI    = "openai"
	TypeAnthropic = "anthropic"
	TypeGemini    = "gemini"
	TypeSim       = "sim"
)

// Config is a validated providers.yaml. Path is the file it was read from.
type Config struct {
	Defaults  Defaults    `yaml:"defaults"`
	Providers []*Provider `yaml:"providers"`
	// Shared names the Redis that processes share limits through (run --shared overrides it).
	Shared Shared `yaml:"shared"`
	Path   string `yaml:"-"`
}

// Shared is the config's shared: block. The URL must not hold a password (config files get
// committed): that comes from the --shared URL or the environment.
type Shared struct {
	URL string `yaml:"url"` // redis://host:6379/0 or rediss://host:6380/0
}

// Defaults are the run-wide settings; each provider may override Timeout, Retry and Breaker.
type Defaults struct {
	Concurrency int      `yaml:"concurrency"` // total requests in flight
	Timeout     Duration `yaml:"timeout"`     // per attempt
	Retry       Retry    `yaml:"retry"`
	Breaker     Breaker  `yaml:"breaker"`
	// DeadAfter bounds how long a prompt waits while every lane able to serve it is unusable (its
	// breaker open, no success since its failures began): after it, or after a lane's breaker has
	// opened DeadOpens times in a row, the prompt fails naming the provider and its last failure.
	DeadAfter Duration `yaml:"dead_after"`
}

// DefaultDeadAfter is defaults.dead_after when the file leaves it out.
const DefaultDeadAfter = 3 * time.Minute

// DeadOpens is how many breaker openings in a row, with no success between, make a lane dead.
const DeadOpens = 4

// Retry is the retry and backoff policy.
type Retry struct {
	MaxAttempts int      `yaml:"max_attempts"`
	BaseDelay   Duration `yaml:"base_delay"`
	MaxDelay    Duration `yaml:"max_delay"`
	Jitter      float64  `yaml:"jitter"` // fraction, 0.25 = ±25%
}

// Breaker is the per-lane circuit breaker policy (resilience4j's model): it opens on the failure
// rate over the lane's recent calls, not on a run of coincidences.
type Breaker struct {
	// FailureThreshold is the fewest failures among the recent calls that can open it (default 5).
	FailureThreshold int `yaml:"failure_threshold"`
	// OpenFor is the longest it stays open before a probe (default 30s); the first opening lasts
	// a sixteenth of it (at least 250ms) and each reopening without a success in between doubles.
	OpenFor Duration `yaml:"open_for"`
	// FailureRate is the share of the recent calls that must have failed to open it (default 0.5).
	FailureRate float64 `yaml:"failure_rate"`
	// Window is how many recent calls the rate is measured over (default 50).
	Window int `yaml:"window"`
	// Probes is how many requests a half-open breaker lets through at once (default 2).
	Probes int `yaml:"probes"`
}

// Provider is one API endpoint with a key and a set of models.
type Provider struct {
	Name           string            `yaml:"name"`
	Type           string            `yaml:"type"` // openai | anthropic | gemini | sim
	BaseURL        string            `yaml:"base_url"`
	APIKeyEnv      string            `yaml:"api_key_env"`
	Enabled        *bool             `yaml:"enabled"`         // false keeps the provider listed but unused; default true
	MaxConcurrency int               `yaml:"max_concurrency"` // 0 = only the global bound
	Headers        map[string]string `yaml:"headers"`         // extra request headers (no secrets: keys come from api_key_env)
	Timeout        *Duration         `yaml:"timeout"`         // overrides defaults.timeout
	Retry          *Retry            `yaml:"retry"`           // overrides defaults.retry
	Breaker        *Breaker          `yaml:"breaker"`         // overrides defaults.breaker
	Models         []*Model          `yaml:"models"`
	Sim            *Sim              `yaml:"sim"` // only for type: sim
	// Batch enables the provider's batch API (nil = realtime only); see Batch.
	Batch *Batch `yaml:"batch"`
	// Window and Quantum say how the provider enforces its models' per-minute limits (a model's
	// own fields win); see Model.Window.
	Window  Duration `yaml:"window"`
	Quantum Duration `yaml:"quantum"`
}

// Model is one model of a provider with its prices and limits. Zero limits mean unknown.
type Model struct {
	Name            string  `yaml:"name"`
	Category        string  `yaml:"category"` // tiny|small|large|reasoning; derived from the name when empty
	ContextWindow   int     `yaml:"context_window"`
	MaxOutputTokens int     `yaml:"max_output_tokens"`
	InputPerMTok    float64 `yaml:"input_per_mtok"`  // USD per million input tokens
	OutputPerMTok   float64 `yaml:"output_per_mtok"` // USD per million output tokens
	RPM             int     `yaml:"rpm"`
	TPM             int     `yaml:"tpm"`
	RPD             int     `yaml:"rpd"`
	TPD             int     `yaml:"tpd"`
	Free            bool    `yaml:"free"`
	Encoding        string  `yaml:"encoding"` // cl100k_base | o200k_base; empty = estimate
	// Window is the sliding window over which the provider enforces rpm and tpm (still stated per
	// minute): a window of 10s admits a sixth of them at once. Quantum, when set, is a sub-window
	// each admitting only its share (quantum: 1s = one second's share at a time, no burst). Both
	// empty: learned from the provider's headers. The provider's window/quantum apply when empty.
	Window  Duration `yaml:"window"`
	Quantum Duration `yaml:"quantum"`
}

// EnforcementFor returns how provider p enforces model m's per-minute limits: the model's window
// and quantum, else the provider's (zero = unknown).
func EnforcementFor(p *Provider, m *Model) (window, quantum time.Duration) {
	if m.Window > 0 || m.Quantum > 0 {
		return m.Window.D(), m.Quantum.D()
	}
	return p.Window.D(), p.Quantum.D()
}

// Sim configures the built-in simulator behind a `type: sim` provider.
type Sim struct {
	API                   string    `yaml:"api"`                      // wire format: openai (default) | anthropic | gemini
	Latency               Duration  `yaml:"latency"`                  // base latency per request
	LatencyPerOutputToken Duration  `yaml:"latency_per_output_token"` // added per generated token
	Jitter                float64   `yaml:"jitter"`                   // fraction of latency, ±
	MaxConcurrency        int       `yaml:"max_concurrency"`          // 0 = unlimited; beyond it: 429
	Seed                  int64     `yaml:"seed"`                     // fault and jitter randomness
	Faults                SimFaults `yaml:"faults"`
	// FaultsFor limits the faults to the first FaultsFor after the simulator starts (a provider that
	// recovers); 0 = for the whole run.
	FaultsFor Duration            `yaml:"faults_for"`
	Limits    map[string]SimLimit `yaml:"limits"` // per model name; default: the model's configured limits
	// RateLimitRetryAfter is the Retry-After of the random 429s (faults.rate_limit); 0 = none.
	RateLimitRetryAfter Duration `yaml:"rate_limit_retry_after"`
	// RateLimitHeaders makes the random 429s carry the rate-limit headers (remaining budget left).
	RateLimitHeaders bool `yaml:"rate_limit_headers"`
	// Batch shapes the simulator's batch endpoints (turnaround, failures, limits); nil = defaults.
	Batch *SimBatch `yaml:"batch"`
}

// SimFaults are the probabilities (0..1) of each injected fault per request.
type SimFaults struct {
	ServerError       float64 `yaml:"server_error"`       // 500
	Unavailable       float64 `yaml:"unavailable"`        // 503
	Overloaded        float64 `yaml:"overloaded"`         // 529 (Anthropic style)
	Reset             float64 `yaml:"reset"`              // connection reset before a response
	Hang              float64 `yaml:"hang"`               // never answers; the client's timeout must fire
	Malformed         float64 `yaml:"malformed"`          // 200 with a body that is not valid JSON
	Auth              float64 `yaml:"auth"`               // 401
	InsufficientQuota float64 `yaml:"insufficient_quota"` // 429 insufficient_quota (never retry)
	// RateLimit is a 429 rate_limit_exceeded that no limit explains (a provider shedding load); it
	// is drawn before admission, so it does not count in the windows. See Sim.RateLimitRetryAfter and
	// Sim.RateLimitHeaders for what it carries.
	RateLimit float64 `yaml:"rate_limit"`
}

// SimLimit is what the simulator enforces for one model, regardless of what the client is told.
type SimLimit struct {
	RPM int `yaml:"rpm"`
	TPM int `yaml:"tpm"`
	RPD int `yaml:"rpd"`
	// HideHeaders stops the simulator from sending rate-limit headers on success.
	HideHeaders bool `yaml:"hide_headers"`
	// Window is the length of the sliding window the per-minute figures are enforced over, each
	// window admitting its share (rpm·window/60); 0 = 60 s.
	Window Duration `yaml:"window"`
	// Quantum, when set, also enforces fixed sub-windows of this length, each admitting its share
	// (rpm·quantum/60): per-minute limits enforced per second, as OpenAI documents.
	Quantum Duration `yaml:"quantum"`
	// Headers says which figures the limit headers state: "minute" (default: the per-minute
	// figures whatever the window) or "window" (the window's share, e.g. 600 for 3,600 RPM over 10 s).
	Headers string `yaml:"headers"`
}

// Duration is a time.Duration written as a Go duration string ("30s", "1m30s") in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a duration string and reports a bad one with its line and column.
func (d *Duration) UnmarshalYAML(node ast.Node) error {
	s, ok := node.(*ast.StringNode)
	if !ok {
		if i, isInt := node.(*ast.IntegerNode); isInt && fmt.Sprint(i.Value) == "0" {
			*d = 0
			return nil
		}
		return posError(node, "duration must be a string such as \"30s\" or \"1m\", got %s", node.String())
	}
	v, err := time.ParseDuration(s.Value)
	if err != nil || v < 0 {
		return posError(node, "bad duration %q: use a non-negative Go duration such as \"500ms\", \"30s\" or \"2m\"", s.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Lookup returns the provider and model with those names, or nil.
func (c *Config) Lookup(provider, model string) (*Provider, *Model) {
	for _, p := range c.Providers {
		if p.Name != provider {
			continue
		}
		for _, m := range p.Models {
			if m.Name == model {
				return p, m
			}
		}
	}
	return nil, nil
}

// TimeoutFor returns the per-attempt timeout of a provider.
func (c *Config) TimeoutFor(p *Provider) time.Duration {
	if p.Timeout != nil {
		return p.Timeout.D()
	}
	return c.Defaults.Timeout.D()
}

// RetryFor returns the retry policy of a provider.
func (c *Config) RetryFor(p *Provider) Retry {
	if p.Retry != nil {
		return *p.Retry
	}
	return c.Defaults.Retry
}

// BreakerFor returns the breaker policy of a provider.
func (c *Config) BreakerFor(p *Provider) Breaker {
	if p.Breaker != nil {
		return *p.Breaker
	}
	return c.Defaults.Breaker
}

// NeedsKey reports whether the provider needs an API key from the environment.
func (p *Provider) NeedsKey() bool { return p.Type != TypeSim && p.APIKeyEnv != "" }

// APIKey returns the provider's key from its environment variable using getenv (os.Getenv when nil).
// The key is never logged or printed.
func (p *Provider) APIKey(getenv func(string) string) string {
	if p.APIKeyEnv == "" {
		return ""
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	return getenv(p.APIKeyEnv)
}

// Available reports whether the provider can be used: it is not disabled (enabled: false) and it is
// a simulator, a keyless endpoint (api_key_env empty, as for a local Ollama), or a provider whose key
// variable is set.
func (p *Provider) Available(getenv func(string) string) bool { return p.Unavailable(getenv) == "" }

// Unavailable says why the provider cannot be used, or "" when it can.
func (p *Provider) Unavailable(getenv func(string) string) string {
	switch {
	case p.Disabled():
		return "disabled in the config (enabled: false)"
	case p.NeedsKey() && p.APIKey(getenv) == "":
		return "provider key not set (" + redact.EnvName(p.APIKeyEnv) + ")"
	}
	return ""
}

// Disabled reports whether the config turns the provider off with enabled: false.
func (p *Provider) Disabled() bool { return p.Enabled != nil && !*p.Enabled }

// Warnings lists what in the config works but exposes a secret: a credential written into a
// base_url (userinfo or a key=… query value; it is masked wherever it is printed) and an api_key_env
// that does not look like a variable name (likely the key itself). Each names the provider and the
// fix, never the secret.
func (c *Config) Warnings() []string {
	var out []string
	for _, p := range c.Providers {
		if redact.HasSecret(p.BaseURL) {
			out = append(out, fmt.Sprintf("provider %s: base_url %s carries a credential: put the key in an environment variable and name it in api_key_env",
				p.Name, redact.URL(p.BaseURL)))
		}
		if p.APIKeyEnv != "" && !redact.IsEnvName(p.APIKeyEnv) {
			out = append(out, fmt.Sprintf("provider %s: api_key_env is not a variable name such as OPENAI_API_KEY (is it the key itself? it is not shown): set it to the name of the variable that holds the key", p.Name))
		}
	}
	return out
}

// CheckKeys returns an error naming each usable provider whose key (read with getenv) cannot be
// sent as an HTTP header value (see KeyProblem): such a request could never succeed. The error names
// the variable, never the value.
func (c *Config) CheckKeys(getenv func(string) string) error {
	var errs []string
	for _, p := range c.Providers {
		if !p.Available(getenv) {
			continue
		}
		if problem := p.KeyProblem(getenv); problem != "" {
			errs = append(errs, fmt.Sprintf("provider %s: the key in %s %s and cannot be sent in an HTTP header: remove it (a trailing newline from a key file, for instance)",
				p.Name, redact.EnvName(p.APIKeyEnv), problem))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "\n"))
}

// KeyProblem says what makes the provider's key unusable as an HTTP header value, a newline or
// another control character ("has a control character (0x0a) at its end"), or "" when the key is
// fine or unset. It never quotes the key.
func (p *Provider) KeyProblem(getenv func(string) string) string {
	key := p.APIKey(getenv)
	// The rule of RFC 9110 field values (as net/http's httpguts.ValidHeaderFieldValue), for one value.
	for i := 0; i < len(key); i++ {
		if b := key[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			where := fmt.Sprintf("at byte %d of %d", i+1, len(key))
			if i == len(key)-1 {
				where = "at its end"
			}
			return fmt.Sprintf("has a control character (0x%02x) %s", b, where)
		}
	}
	return ""
}
