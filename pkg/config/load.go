package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/llmbatch/llmbatch/pkg/model"
)

// Error is a validation failure located in the config file.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int
	Msg    string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Errors is every validation failure of one file; it is returned as a whole so a user fixes all at once.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// posErr carries a YAML position out of UnmarshalYAML; Load turns it into an *Error.
type posErr struct {
	pos *token.Position
	msg string
}

func (e *posErr) Error() string { return e.msg }

func posError(node ast.Node, format string, args ...any) error {
	return &posErr{pos: node.GetToken().Position, msg: fmt.Sprintf(format, args...)}
}

// Load reads and validates the file at path. Every problem is reported with file:line:col.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w (pass -c FILE or set LLMBATCH_CONFIG)", err)
	}
	return Parse(path, data)
}

// Parse validates data as the contents of the config file named name.
func Parse(name string, data []byte) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errors{{File: name, Msg: "the file is empty: it needs at least a providers: list (see providers.yaml in the repository)"}}
	}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Errors{yamlError(name, err)}
	}
	var cfg Config
	if err := yaml.NewDecoder(bytes.NewReader(data), yaml.Strict()).Decode(&cfg); err != nil {
		return nil, Errors{yamlError(name, err)}
	}
	cfg.Path = name
	v := validator{name: name, file: file}
	cfg.applyDefaults()
	v.check(&cfg)
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
		return nil, v.errs
	}
	return &cfg, nil
}

func yamlError(name string, err error) *Error {
	var pe *posErr
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.pos.Line, Column: pe.pos.Column, Msg: pe.msg}
	}
	var se yaml.Error
	if errors.As(err, &se) && se.GetToken() != nil {
		p := se.GetToken().Position
		return &Error{File: name, Line: p.Line, Column: p.Column, Msg: typeMismatch(se.GetToken(), se.GetMessage())}
	}
	return &Error{File: name, Msg: yaml.FormatError(err, false, false)}
}

// typeMismatch rewrites the decoder's "cannot unmarshal string into Go struct field Config.Providers
// of type int" as "rpm: "lots" is not a whole number"; other messages pass unchanged.
func typeMismatch(tok *token.Token, msg string) string {
	_, goType, ok := strings.Cut(msg, " of type ")
	if !strings.HasPrefix(msg, "cannot unmarshal") || !ok {
		return msg
	}
	want := map[string]string{"int": "a whole number", "float64": "a number", "bool": "true or false",
		"string": "a string"}[goType]
	if want == "" {
		want = "of the expected type (" + goType + ")"
	}
	field := "value"
	if prev := tok.Prev; prev != nil && prev.Type == token.MappingValueType && prev.Prev != nil {
		field = prev.Prev.Value
	}
	return fmt.Sprintf("%s: %q is not %s", field, tok.Value, want)
}

// applyDefaults fills what the file leaves out with the documented defaults.
func (c *Config) applyDefaults() {
	d := &c.Defaults
	if d.Concurrency == 0 {
		d.Concurrency = 64
	}
	if d.Timeout == 0 {
		d.Timeout = Duration(120 * time.Second)
	}
	if d.DeadAfter == 0 {
		d.DeadAfter = Duration(DefaultDeadAfter)
	}
	fillRetry(&d.Retry, Retry{MaxAttempts: 6, BaseDelay: Duration(time.Second), MaxDelay: Duration(60 * time.Second), Jitter: 0.25})
	fillBreaker(&d.Breaker, Breaker{FailureThreshold: 5, OpenFor: Duration(30 * time.Second)})
	for _, p := range c.Providers { // a provider's override inherits what it leaves out from defaults
		if p.Retry != nil {
			fillRetry(p.Retry, d.Retry)
		}
		if p.Breaker != nil {
			fillBreaker(p.Breaker, d.Breaker)
		}
	}
}

// fillRetry sets r's zero fields from def.
func fillRetry(r *Retry, def Retry) {
	if r.MaxAttempts == 0 {
		r.MaxAttempts = def.MaxAttempts
	}
	if r.BaseDelay == 0 {
		r.BaseDelay = def.BaseDelay
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = def.MaxDelay
	}
	if r.Jitter == 0 {
		r.Jitter = def.Jitter
	}
}

// fillBreaker sets b's zero fields from def.
func fillBreaker(b *Breaker, def Breaker) {
	if b.FailureThreshold == 0 {
		b.FailureThreshold = def.FailureThreshold
	}
	if b.OpenFor == 0 {
		b.OpenFor = def.OpenFor
	}
}

type validator struct {
	name string
	file *ast.File
	errs Errors
}

// at records a problem at the YAML path (e.g. "$.providers[0].models[2].rpm").
func (v *validator) at(path, format string, args ...any) {
	e := &Error{File: v.name, Msg: fmt.Sprintf(format, args...)}
	if p, err := yaml.PathString(path); err == nil {
		if n, err := p.FilterFile(v.file); err == nil && n != nil {
			pos := n.GetToken().Position
			e.Line, e.Column = pos.Line, pos.Column
		}
	}
	v.errs = append(v.errs, e)
}

func (v *validator) nonNegative(path string, fields map[string]float64) {
	for k, x := range fields {
		if x < 0 {
			v.at(path+"."+k, "%s must not be negative (got %v)", k, x)
		}
	}
}

func (v *validator) check(c *Config) {
	if len(c.Providers) == 0 {
		v.at("$", "no providers: add a providers: list with at least one provider and model")
	}
	v.nonNegative("$.defaults", map[string]float64{"concurrency": float64(c.Defaults.Concurrency)})
	v.checkRetry("$.defaults.retry", c.Defaults.Retry)
	v.checkBreaker("$.defaults.breaker", c.Defaults.Breaker)
	seenProvider := map[string]bool{}
	for i, p := range c.Providers {
		pp := fmt.Sprintf("$.providers[%d]", i)
		if p == nil {
			v.at(pp, "empty provider entry")
			continue
		}
		switch {
		case p.Name == "":
			v.at(pp, "provider has no name")
		case seenProvider[p.Name]:
			v.at(pp+".name", "duplicate provider name %q: provider names must be unique", p.Name)
		}
		seenProvider[p.Name] = true
		switch p.Type {
		case TypeOpenAI, TypeAnthropic, TypeGemini:
			if p.BaseURL == "" {
				v.at(pp, "provider %q has no base_url", p.Name)
			}
			if p.Sim != nil {
				v.at(pp+".sim", "provider %q: a sim: section only applies to type: sim", p.Name)
			}
		case TypeSim:
			if p.Sim == nil {
				p.Sim = &Sim{}
			}
			v.checkSim(pp+".sim", p)
		case "":
			v.at(pp, "provider %q has no type (openai, anthropic, gemini or sim)", p.Name)
		default:
			v.at(pp+".type", "provider %q: unknown type %q (want openai, anthropic, gemini or sim)", p.Name, p.Type)
		}
		v.nonNegative(pp, map[string]float64{"max_concurrency": float64(p.MaxConcurrency)})
		v.checkEnforcement(pp, p.Window, p.Quantum)
		if p.Batch != nil {
			v.checkBatch(pp+".batch", p)
		}
		if p.Retry != nil {
			v.checkRetry(pp+".retry", *p.Retry)
		}
		if p.Breaker != nil {
			v.checkBreaker(pp+".breaker", *p.Breaker)
		}
		if len(p.Models) == 0 {
			v.at(pp, "provider %q has no models", p.Name)
		}
		seenModel := map[string]bool{}
		for j, m := range p.Models {
			mp := fmt.Sprintf("%s.models[%d]", pp, j)
			if m == nil {
				v.at(mp, "empty model entry")
				continue
			}
			switch {
			case m.Name == "":
				v.at(mp, "model has no name")
			case seenModel[m.Name]:
				v.at(mp+".name", "provider %q: duplicate model %q", p.Name, m.Name)
			}
			seenModel[m.Name] = true
			if _, err := model.ParseCategory(m.Category); err != nil {
				v.at(mp+".category", "model %q: %v", m.Name, err)
			}
			switch m.Encoding {
			case "", "cl100k_base", "o200k_base":
			default:
				v.at(mp+".encoding", "model %q: unknown encoding %q (want cl100k_base, o200k_base, or leave it out for an estimate)", m.Name, m.Encoding)
			}
			v.nonNegative(mp, map[string]float64{
				"context_window": float64(m.ContextWindow), "max_output_tokens": float64(m.MaxOutputTokens),
				"input_per_mtok": m.InputPerMTok, "output_per_mtok": m.OutputPerMTok,
				"rpm": float64(m.RPM), "tpm": float64(m.TPM), "rpd": float64(m.RPD), "tpd": float64(m.TPD),
			})
			v.checkEnforcement(mp, m.Window, m.Quantum)
		}
	}
}

// checkEnforcement checks a window and quantum: each at most a minute (the limits are per minute),
// the quantum no longer than the window.
func (v *validator) checkEnforcement(path string, window, quantum Duration) {
	for k, d := range map[string]Duration{"window": window, "quantum": quantum} {
		if d < 0 || d.D() > time.Minute {
			v.at(path+"."+k, "%s %s: want a duration up to 1m (the limits are per minute), e.g. %s: 10s", k, d.D(), k)
		}
	}
	if window > 0 && quantum > window {
		v.at(path+".quantum", "quantum %s is longer than window %s: a quantum is a sub-window of the window", quantum.D(), window.D())
	}
}

func (v *validator) checkBreaker(path string, b Breaker) {
	v.nonNegative(path, map[string]float64{"failure_threshold": float64(b.FailureThreshold), "open_for": float64(b.OpenFor),
		"window": float64(b.Window), "probes": float64(b.Probes)})
	if b.FailureRate < 0 || b.FailureRate > 1 {
		v.at(path+".failure_rate", "failure_rate is a share of the recent calls between 0 and 1 (e.g. 0.5), got %v", b.FailureRate)
	}
}

func (v *validator) checkRetry(path string, r Retry) {
	v.nonNegative(path, map[string]float64{"max_attempts": float64(r.MaxAttempts), "jitter": r.Jitter})
	if r.Jitter > 1 {
		v.at(path+".jitter", "jitter is a fraction between 0 and 1 (0.25 = ±25%%), got %v", r.Jitter)
	}
	if r.MaxDelay < r.BaseDelay {
		v.at(path+".max_delay", "max_delay (%s) is shorter than base_delay (%s)", r.MaxDelay.D(), r.BaseDelay.D())
	}
}

func (v *validator) checkSim(path string, p *Provider) {
	s := p.Sim
	switch s.API {
	case "":
		s.API = TypeOpenAI
	case TypeOpenAI, TypeAnthropic, TypeGemini:
	default:
		v.at(path+".api", "sim api %q: want openai, anthropic or gemini", s.API)
	}
	v.nonNegative(path, map[string]float64{"jitter": s.Jitter, "max_concurrency": float64(s.MaxConcurrency)})
	f := s.Faults
	for k, x := range map[string]float64{
		"server_error": f.ServerError, "unavailable": f.Unavailable, "overloaded": f.Overloaded, "reset": f.Reset,
		"hang": f.Hang, "malformed": f.Malformed, "auth": f.Auth, "insufficient_quota": f.InsufficientQuota,
		"rate_limit": f.RateLimit,
	} {
		if x < 0 || x > 1 {
			v.at(path+".faults."+k, "%s is a probability between 0 and 1, got %v", k, x)
		}
	}
	if s.Batch != nil {
		v.checkSimBatch(path+".batch", s.Batch)
	}
	for name, l := range s.Limits {
		found := false
		for _, m := range p.Models {
			found = found || (m != nil && m.Name == name)
		}
		if !found {
			v.at(path+".limits", "sim limits name model %q, which provider %q does not list", name, p.Name)
		}
		v.nonNegative(path+".limits."+name, map[string]float64{"rpm": float64(l.RPM), "tpm": float64(l.TPM), "rpd": float64(l.RPD),
			"window": float64(l.Window), "quantum": float64(l.Quantum)})
		if l.Window > 0 && l.Quantum > l.Window {
			v.at(path+".limits."+name+".quantum", "quantum (%s) is longer than window (%s): a quantum is a sub-window", l.Quantum.D(), l.Window.D())
		}
		switch l.Headers {
		case "", "minute", "window":
		default:
			v.at(path+".limits."+name+".headers", "headers %q: want minute (per-minute figures) or window (the window's share)", l.Headers)
		}
	}
}
