package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
	"github.com/llmbatch/llmbatch/pkg/redact"
	"github.com/llmbatch/llmbatch/pkg/retry"
	"github.com/llmbatch/llmbatch/pkg/routing"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// target is the engine's live state of one (provider, model) it sends to: its limiter, breaker and
// health, and the provider-wide concurrency slot it shares with the provider's other models. (The
// config's entry is a config.Model, the selector's view a selector.Lane, the pacing a
// ratelimit.Limiter; "lane" in logs and docs is the (provider, model) pair itself.)
type target struct {
	sel      *selector.Lane
	cfg      *config.Model
	prov     *providerState
	limits   Limiter
	breaker  *routing.Breaker
	health   *routing.Health
	inFlight atomic.Int64
	// admitted and admittedTokens sum what the limiter admitted, for the ceiling in the summary.
	admitted, admittedTokens atomic.Int64
	// exhausted is set when the lane's daily quota is spent: it stops taking work for the run.
	exhausted atomic.Bool
	// lastFailure is the last lane failure (for the error line of a dead lane); deadLogged is set
	// once the lane's death was logged.
	lastFailure atomic.Pointer[retry.Class]
	deadLogged  atomic.Bool
	// shownOpen is set once a warning said the breaker opened, until a line says it closed again.
	shownOpen atomic.Bool
	// reasoning models get max_completion_tokens from the OpenAI adapter.
	reasoning bool
	// now is the run's clock; breakerShared the last open-until published (time.Time).
	now           func() time.Time
	breakerShared atomic.Value
}

// providerState is what the lanes of one provider share.
type providerState struct {
	name    string
	addr    string // the base_url as it may be shown: credentials masked (pkg/redact)
	send    Dispatcher
	slots   chan struct{} // per-provider concurrency bound; nil = only the global bound
	policy  retry.Policy
	timeout time.Duration

	mu       sync.Mutex
	disabled *retry.Class // the failure that disabled the provider for the rest of the run; nil = enabled
}

// disable turns the provider off for the rest of the run because of c; it reports whether this
// call did it (so only one warning is logged).
func (p *providerState) disable(c retry.Class) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disabled != nil {
		return false
	}
	p.disabled = &c
	return true
}

// disabledClass returns the failure that disabled the provider, if it is disabled.
func (p *providerState) disabledClass() (retry.Class, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disabled == nil {
		return retry.Class{}, false
	}
	return *p.disabled, true
}

// disabledReason returns why the provider is off, or "".
func (p *providerState) disabledReason() string {
	if c, off := p.disabledClass(); off {
		return string(c.Type) + ": " + c.Message
	}
	return ""
}

// limiterReserver returns the lane's limiter as a reserver when it is one (false for a nil lane).
func (l *target) limiterReserver() (reserver, bool) {
	if l == nil {
		return nil, false
	}
	r, ok := l.limits.(reserver)
	return r, ok
}

// name is "provider/model", the lane's key in logs and the summary.
func (l *target) name() string { return l.sel.String() }

// usable reports whether the lane may take a request now.
func (l *target) usable() bool {
	return !l.exhausted.Load() && l.prov.disabledReason() == "" && l.breaker.State() != routing.StateOpen &&
		!l.sharedBreakerOpen()
}

// sharedBreakerOpen reports whether another process sharing the lane published an open breaker.
func (l *target) sharedBreakerOpen() bool {
	sb, ok := l.limits.(BreakerSharer)
	return ok && l.now != nil && sb.BreakerOpenUntil().After(l.now())
}

// shareBreaker publishes the breaker's opening (once per opening) when the lane is shared.
func (l *target) shareBreaker() {
	sb, ok := l.limits.(BreakerSharer)
	if !ok || l.breaker.State() != routing.StateOpen {
		return
	}
	until := l.breaker.OpenUntil()
	if prev, _ := l.breakerShared.Load().(time.Time); !until.After(prev) {
		return
	}
	l.breakerShared.Store(until)
	sb.PublishBreaker(until)
}

// buildTargets wraps every selector lane whose provider has an adapter in apis with its live state.
// concurrency is the run's global in-flight bound; store makes the limiters and dispatch the
// dispatcher of each provider.
func buildTargets(cfg *config.Config, sels []*selector.Lane, apis map[string]provider.Provider, concurrency int,
	store LimitStore, dispatch func(*config.Provider, provider.Provider) Dispatcher, now func() time.Time) ([]*target, error) {
	provs := map[string]*providerState{}
	var targets []*target
	for _, sl := range sels {
		api, ok := apis[sl.Provider]
		if !ok || !sl.Available {
			continue
		}
		p, m := cfg.Lookup(sl.Provider, sl.Name)
		if p == nil {
			return nil, fmt.Errorf("lane %s is not in the config", sl)
		}
		ps := provs[p.Name]
		if ps == nil {
			ps = &providerState{name: p.Name, addr: providerAddr(p), send: dispatch(p, api), policy: retry.PolicyFrom(cfg.RetryFor(p)), timeout: cfg.TimeoutFor(p)}
			if p.MaxConcurrency > 0 && p.MaxConcurrency < concurrency {
				ps.slots = make(chan struct{}, p.MaxConcurrency)
			}
			provs[p.Name] = ps
		}
		key := sl.String()
		window, quantum := config.EnforcementFor(p, m)
		targets = append(targets, &target{
			sel: sl, cfg: m, prov: ps,
			limits: store.Limiter(key, ratelimit.Limits{RPM: m.RPM, TPM: m.TPM, RPD: m.RPD, TPD: m.TPD,
				Window: window, Quantum: quantum}),
			breaker:   routing.NewBreaker(key, cfg.BreakerFor(p), now),
			health:    routing.NewHealth(routing.HealthConfig{Cooldown: cfg.BreakerFor(p).OpenFor.D()}),
			reasoning: sl.Category == model.Reasoning,
			now:       now,
		})
	}
	if len(targets) == 0 {
		return nil, errors.New("no usable lane: set the API key variable of at least one provider in the config, or use a type: sim provider")
	}
	return targets, nil
}

// providerAddr is where p's requests go, for warnings: its base_url with credentials masked.
func providerAddr(p *config.Provider) string {
	if p.BaseURL == "" && p.Type == config.TypeSim {
		return "in-process simulator"
	}
	if p.BaseURL == "" {
		return "the " + p.Type + " default"
	}
	return redact.URL(p.BaseURL)
}

// recovery tells jobs that a lane has just recovered (its first success after lane failures), so a
// job queued on a less preferred lane's rate limiter can give up its place and choose again: without
// it, every job that fell back while a cheap lane was down stays on the fallback for the rest of its
// wait, however long. The zero value is ready to use; it is safe for concurrent use.
type recovery struct {
	mu     sync.Mutex
	ctx    context.Context // done at the next recovery; nil until someone waits
	cancel context.CancelFunc
}

// next returns a context that is done at the next recovery.
func (r *recovery) next() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	return r.ctx
}

// signal ends the current next context, waking every job that waits on it.
func (r *recovery) signal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
		r.ctx, r.cancel = nil, nil
	}
}
