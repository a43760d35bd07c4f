// Package sim is llmbatch's provider simulator: one http.Handler that speaks the OpenAI, Anthropic and
// Gemini chat APIs on their real paths and wire formats, enforces strict per-model rate limits over
// sliding windows, adds latency and injects faults, and answers deterministically. It serves
// `type: sim` providers in-process (Server.Transport, no sockets) and `llmbatch sim serve` over HTTP.
//
// # Endpoints
//
//	POST /v1/chat/completions                     OpenAI (Authorization ignored)
//	POST /v1/messages                             Anthropic (x-api-key, anthropic-version ignored)
//	POST /v1beta/models/{model}:generateContent   Gemini (key ignored)
//	GET  /v1/models                               models served (cheap health probe)
//
// and the three APIs' batch endpoints (OpenAI files and batches, Anthropic message batches, Gemini
// batchGenerateContent operations) with the behaviour of sim.batch: see batch.go.
//
// Base URLs in providers.yaml follow the SDK conventions (see BaseURL). Every model of every provider
// answers on all three APIs; a provider's sim.api names the wire format its clients are expected to
// use and breaks routing ties (below).
//
// # Routing
//
// State (limits, stats, concurrency) is kept per (provider, model). A request is routed by its model
// name. When several providers serve that name, the provider is chosen by, in order: the path prefix
// /sim/{provider} (e.g. base_url http://host/sim/sim-cheap/v1), the request header x-sim-provider,
// then a provider whose sim.api matches the request's API, then the first in config order.
//
// # Limits
//
// RPM and TPM are enforced over a sliding 60 s window and RPD over a sliding 24 h window, per
// (provider, model). sim.limits[model] may change how: window (a sliding window of another length
// admitting its share of the per-minute figures, rpm·window/60), quantum (fixed sub-windows aligned on
// the Unix epoch, each admitting rpm·quantum/60; a rejection there leaves remaining budget in the
// headers) and headers (minute, the default: headers state per-minute figures whatever the window,
// remaining scaled to a minute; window: the window's own figures). faults.rate_limit answers 429
// at random before admission, with sim.rate_limit_retry_after as Retry-After and, with
// sim.rate_limit_headers, the limit headers of the current state. The limit values are sim.limits[model] field by field, falling back to the model's
// rpm/tpm/rpd where that field is 0 (0 everywhere = unlimited). A request's admission cost in tokens
// is PromptTokens(texts) + max_tokens (the model's max_output_tokens when the request gives none).
// Only admitted requests enter the windows: a request rejected with 429 does not count (as with a
// token bucket), so waiting the advertised retry-after is enough to be admitted. Rate-limit headers
// (success and 429) report remaining capacity; their reset is the time until the oldest admission
// leaves the window, except on a 429 where reset and retry-after are the exact time until this
// request would be admitted. retry-after is whole seconds rounded up (OpenAI adds retry-after-ms);
// Anthropic resets are RFC 3339 instants rounded up to the second; Gemini sends no headers, only a
// RetryInfo retryDelay in whole seconds rounded up.
//
// # Request lifecycle
//
// Parse (400 on a bad body, 404 on an unknown model) → one seeded fault draw → auth fault (401) →
// max_tokens above max_output_tokens or prompt+max_tokens above context_window (400) → concurrency cap
// (429; 529 on the Anthropic API) → rate limits (429) → insufficient_quota fault → admitted (counts
// in the windows) → server_error 500, unavailable 503, overloaded (529 Anthropic, 503 elsewhere),
// connection reset, hang → latency → malformed 200 or the answer. Faults drawn before admission model
// failures before the model runs (they do not count toward the limits); the others count, as the
// request reached the model.
//
// # Answers
//
// The answer to a request is Reply(texts, max_tokens), texts being its message texts in order with
// the system prompt first (Anthropic: top-level system, then messages; Gemini: systemInstruction, then
// contents), each message's text parts joined by "\n". It starts with Digest(texts), and usage reports
// PromptTokens(texts) input tokens and the answer's word count as output tokens.
package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
)

// ProviderHeader is the request header that picks the provider when a model name is served by several.
const ProviderHeader = "X-Sim-Provider"

// maxBody caps a request body (input lines may be 32 MiB).
const maxBody = 64 << 20

// Options are the simulator's injected dependencies.
type Options struct {
	// Now is the clock; nil means time.Now. Latency always waits on real timers (fake ones inside a
	// testing/synctest bubble).
	Now func() time.Time
	// Seed is mixed with each provider's sim.seed and name to seed that provider's random source
	// (faults and jitter), so a run is reproducible for a given request order.
	Seed int64
}

// ModelStats is what one (provider, model) has seen since the Server was built.
type ModelStats struct {
	Requests    int // requests routed to the model, whatever their outcome
	OK          int // well-formed 200 answers
	RateLimited int // rejections by the rate limits or the concurrency cap (429, or 529 on the Anthropic API)
	// RandomRateLimited counts the random 429s of faults.rate_limit (also in Faults, not in RateLimited).
	RandomRateLimited int
	Faults            int // injected faults of any kind, hangs and resets included
	Invalid           int // 400s for context length or max_tokens
	Canceled          int // admitted requests whose client gave up before the answer (hangs excluded)
	InputTokens       int // prompt tokens of the OK answers
	OutputTokens      int // output tokens of the OK answers
	// MaxInWindow is the most admissions seen in any 60 s window; never above the enforced RPM.
	MaxInWindow int
	// MaxInFlight is the most requests of this model in flight at once (past the concurrency check).
	MaxInFlight int
	// Batch endpoints (batch.go): lines accepted into batch jobs, lines answered when their batch
	// ended (each once; their tokens are in InputTokens/OutputTokens), lines errored, expired or
	// canceled, and lines accepted while the same request (model and texts) sat in another
	// unfinished batch.
	BatchLines, BatchOK, BatchFailed, BatchDuplicateLive int
}

// Server is the simulator's http.Handler. It is safe for concurrent use.
type Server struct {
	now       func() time.Time
	started   time.Time // for sim.faults_for
	providers []*simProvider
	lanes     []*lane            // config order
	byModel   map[string][]*lane // model name → lanes, config order
	seq       atomic.Uint64      // response ids
	batches   *batchStore        // batch jobs and files (batch.go)
}

type simProvider struct {
	name string
	api  api
	sim  config.Sim

	mu       sync.Mutex
	rng      *rand.Rand
	inFlight int
}

type lane struct {
	p     *simProvider
	model *config.Model
	key   string // "provider/model"

	mu       sync.Mutex
	lim      limiter
	stats    ModelStats
	inFlight int
}

// New returns a Server for every model of every `type: sim` provider of cfg. Sim sections may be nil
// (treated as empty); cfg must not change while the Server is used.
func New(cfg *config.Config, opts Options) *Server {
	var ps []*config.Provider
	for _, p := range cfg.Providers {
		if p != nil && p.Type == config.TypeSim {
			ps = append(ps, p)
		}
	}
	return build(ps, opts)
}

// NewProvider returns a Server for the models of p alone, whatever p's type (its sim section, when
// present, sets the behaviour): what a `type: sim` provider uses in-process through Transport.
func NewProvider(p *config.Provider, opts Options) *Server {
	return build([]*config.Provider{p}, opts)
}

func build(ps []*config.Provider, opts Options) *Server {
	s := &Server{now: opts.Now, byModel: map[string][]*lane{}, batches: newBatchStore()}
	if s.now == nil {
		s.now = time.Now
	}
	s.started = s.now()
	for _, p := range ps {
		sp := &simProvider{name: p.Name}
		if p.Sim != nil {
			sp.sim = *p.Sim
		}
		switch sp.sim.API {
		case config.TypeAnthropic:
			sp.api = apiAnthropic
		case config.TypeGemini:
			sp.api = apiGemini
		}
		h := fnv.New64a()
		_, _ = io.WriteString(h, p.Name)
		sp.rng = rand.New(rand.NewPCG(uint64(opts.Seed), uint64(sp.sim.Seed)^h.Sum64()))
		s.providers = append(s.providers, sp)
		for _, m := range p.Models {
			if m == nil {
				continue
			}
			l := &lane{p: sp, model: m, key: p.Name + "/" + m.Name}
			l.lim.lim = limits{rpm: m.RPM, tpm: m.TPM, rpd: m.RPD}
			if sl, ok := sp.sim.Limits[m.Name]; ok {
				l.lim.lim.hideHeaders = sl.HideHeaders
				l.lim.lim.window, l.lim.lim.quantum = sl.Window.D(), sl.Quantum.D()
				l.lim.lim.windowHeaders = sl.Headers == "window"
				if sl.RPM > 0 {
					l.lim.lim.rpm = sl.RPM
				}
				if sl.TPM > 0 {
					l.lim.lim.tpm = sl.TPM
				}
				if sl.RPD > 0 {
					l.lim.lim.rpd = sl.RPD
				}
			}
			s.lanes = append(s.lanes, l)
			s.byModel[m.Name] = append(s.byModel[m.Name], l)
		}
	}
	return s
}

// BaseURL returns the base_url a client of wire format api ("openai", "anthropic" or "gemini") uses
// for a simulator at root (e.g. "http://127.0.0.1:8089", or ".../sim/{provider}" to pin a provider),
// following each SDK's convention: openai root+"/v1", anthropic root, gemini root+"/v1beta".
func BaseURL(root, api string) string {
	root = strings.TrimRight(root, "/")
	switch api {
	case config.TypeAnthropic:
		return root
	case config.TypeGemini:
		return root + "/v1beta"
	}
	return root + "/v1"
}

// ProviderInfo describes one simulated provider, for listings such as `sim serve`'s banner.
type ProviderInfo struct {
	Name   string   // provider name
	API    string   // the sim.api wire format its clients use: openai, anthropic or gemini
	Models []string // model names, config order
}

// Providers lists the simulated providers in config order.
func (s *Server) Providers() []ProviderInfo {
	out := make([]ProviderInfo, 0, len(s.providers))
	for _, p := range s.providers {
		pi := ProviderInfo{Name: p.name, API: p.api.String()}
		for _, l := range s.lanes {
			if l.p == p {
				pi.Models = append(pi.Models, l.model.Name)
			}
		}
		out = append(out, pi)
	}
	return out
}

// Stats returns a snapshot of every model's counters, keyed "provider/model".
func (s *Server) Stats() map[string]ModelStats {
	out := make(map[string]ModelStats, len(s.lanes))
	for _, l := range s.lanes {
		l.mu.Lock()
		st := l.stats
		st.MaxInWindow = l.lim.maxInWindow
		l.mu.Unlock()
		out[l.key] = st
	}
	return out
}

// route picks the lane serving model for a request of API a, or nil.
func (s *Server) route(model, hint string, a api) *lane {
	cands := s.byModel[model]
	if hint != "" {
		for _, l := range cands {
			if l.p.name == hint {
				return l
			}
		}
		return nil
	}
	if len(cands) > 1 {
		for _, l := range cands {
			if l.p.api == a {
				return l
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[0]
}

// StatsPath answers GET with Stats() as JSON: {"provider/model": ModelStats, ...}.
const StatsPath = "/sim/stats"

// ServeHTTP implements http.Handler for the endpoints listed in the package documentation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == StatsPath && r.Method == http.MethodGet {
		// The counters, for tests and load runs against `llmbatch sim serve` in another process.
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
		return
	}
	hint := r.Header.Get(ProviderHeader)
	if rest, ok := strings.CutPrefix(path, "/sim/"); ok {
		name, sub, _ := strings.Cut(rest, "/")
		hint, path = name, "/"+sub
	}
	if s.serveBatch(w, r, hint, path) {
		return
	}
	var a api
	var gemModel string
	switch {
	case path == "/v1/models" || path == "/v1/models/":
		if r.Method != http.MethodGet {
			writeError(w, apiOpenAI, &apiError{status: http.StatusMethodNotAllowed, msg: "use GET"}, s.now(), true)
			return
		}
		s.listModels(w, hint)
		return
	case path == "/v1/chat/completions":
		a = apiOpenAI
	case path == "/v1/messages":
		a = apiAnthropic
	case strings.HasPrefix(path, "/v1beta/models/"):
		a = apiGemini
		m, ok := strings.CutSuffix(strings.TrimPrefix(path, "/v1beta/models/"), ":generateContent")
		if !ok || m == "" {
			writeError(w, a, &apiError{status: http.StatusNotFound, gCode: "NOT_FOUND",
				msg: "the simulator serves only models/{model}:generateContent"}, s.now(), true)
			return
		}
		gemModel = m
	default:
		writeError(w, apiOpenAI, &apiError{status: http.StatusNotFound,
			msg: fmt.Sprintf("Unknown request URL: %s %s. The simulator serves /v1/chat/completions, /v1/messages, /v1beta/models/{model}:generateContent and /v1/models.", r.Method, r.URL.Path)},
			s.now(), true)
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, a, &apiError{status: http.StatusMethodNotAllowed, gCode: "INVALID_ARGUMENT",
			msg: "method " + r.Method + " not allowed: use POST"}, s.now(), true)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, a, errBadRequest("reading the request body: "+err.Error()), s.now(), true)
		return
	}
	var c *call
	switch a {
	case apiOpenAI:
		c, err = parseOpenAI(body)
	case apiAnthropic:
		c, err = parseAnthropic(body)
	case apiGemini:
		c, err = parseGemini(gemModel, body)
	}
	if err != nil {
		writeError(w, a, errBadRequest(err.Error()), s.now(), true)
		return
	}
	l := s.route(c.model, hint, a)
	if l == nil {
		writeError(w, a, errNotFound(a, c.model), s.now(), true)
		return
	}
	s.serve(r.Context(), w, a, l, c)
}

// fault is an injected failure.
type fault int

const (
	faultNone fault = iota
	faultServerError
	faultUnavailable
	faultOverloaded
	faultReset
	faultHang
	faultMalformed
	faultAuth
	faultQuota
	faultRateLimit
)

// pick maps a uniform draw u in [0,1) to a fault by walking the configured rates cumulatively.
func pick(f config.SimFaults, u float64) fault {
	for _, c := range [...]struct {
		p float64
		f fault
	}{
		{f.ServerError, faultServerError}, {f.Unavailable, faultUnavailable}, {f.Overloaded, faultOverloaded},
		{f.Reset, faultReset}, {f.Hang, faultHang}, {f.Malformed, faultMalformed}, {f.Auth, faultAuth},
		{f.InsufficientQuota, faultQuota}, {f.RateLimit, faultRateLimit},
	} {
		if u < c.p {
			return c.f
		}
		u -= c.p
	}
	return faultNone
}

// resetter is implemented by the in-process response writer, which turns a reset into a transport error.
type resetter interface{ resetConn() }

// abort drops the connection without a response: in-process it flags the response writer, over real
// HTTP it panics with http.ErrAbortHandler, which net/http turns into a closed connection.
func abort(w http.ResponseWriter) {
	if r, ok := w.(resetter); ok {
		r.resetConn()
		return
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) serve(ctx context.Context, w http.ResponseWriter, a api, l *lane, c *call) {
	p := l.p
	p.mu.Lock()
	u, jit := p.rng.Float64(), p.rng.Float64()
	p.mu.Unlock()
	f := faultNone
	if d := p.sim.FaultsFor.D(); d == 0 || s.now().Sub(s.started) < d {
		f = pick(p.sim.Faults, u)
	}

	l.mu.Lock()
	l.stats.Requests++
	if f == faultAuth {
		l.stats.Faults++
	}
	l.mu.Unlock()
	if f == faultAuth {
		writeError(w, a, errAuth(a), s.now(), true)
		return
	}

	m := l.model
	prompt := PromptTokens(c.texts)
	var invalid *apiError
	switch {
	case m.MaxOutputTokens > 0 && c.maxTokens > m.MaxOutputTokens:
		invalid = errMaxTokens(a, m.Name, c.maxTokens, m.MaxOutputTokens)
	case m.ContextWindow > 0 && prompt+c.maxTokens > m.ContextWindow:
		invalid = errContext(a, m.Name, m.ContextWindow, prompt, c.maxTokens)
	}
	if invalid != nil {
		l.mu.Lock()
		l.stats.Invalid++
		l.mu.Unlock()
		writeError(w, a, invalid, s.now(), true)
		return
	}
	maxOut := c.maxTokens
	if maxOut == 0 {
		maxOut = m.MaxOutputTokens
	}

	// Concurrency cap, per provider.
	p.mu.Lock()
	capped := p.sim.MaxConcurrency > 0 && p.inFlight >= p.sim.MaxConcurrency
	if !capped {
		p.inFlight++
	}
	p.mu.Unlock()
	if capped {
		l.mu.Lock()
		l.stats.RateLimited++
		l.mu.Unlock()
		writeError(w, a, errConcurrency(a, m.Name, p.sim.MaxConcurrency), s.now(), true)
		return
	}
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
		l.mu.Lock()
		l.inFlight--
		l.mu.Unlock()
	}()

	// Rate limits: the clock is read under the lane's lock so admissions are recorded in order.
	l.mu.Lock()
	l.inFlight++
	l.stats.MaxInFlight = max(l.stats.MaxInFlight, l.inFlight)
	now := s.now()
	var v verdict
	switch f {
	case faultQuota:
		l.stats.Faults++
	case faultRateLimit:
		l.stats.Faults++
		l.stats.RandomRateLimited++
		v = l.lim.peek(now)
	default:
		v = l.lim.admit(now, prompt+maxOut)
		if !v.ok {
			l.stats.RateLimited++
		}
	}
	l.mu.Unlock()
	hide := l.lim.lim.hideHeaders
	switch {
	case f == faultQuota:
		writeError(w, a, errQuota(a, m.Name), now, true)
		return
	case f == faultRateLimit:
		writeError(w, a, errRandomRate(a, m.Name, &v, p.sim.RateLimitRetryAfter.D()), now, hide || !p.sim.RateLimitHeaders)
		return
	case !v.ok:
		writeError(w, a, errRate(a, m.Name, &v), now, false)
		return
	}

	// Admitted.
	var fe *apiError
	switch f {
	case faultServerError:
		fe = errServer(a)
	case faultUnavailable:
		fe = errUnavailable(a)
	case faultOverloaded:
		fe = errOverloaded(a)
	}
	if f != faultNone && f != faultMalformed {
		l.mu.Lock()
		l.stats.Faults++
		l.mu.Unlock()
	}
	switch f {
	case faultReset:
		abort(w)
		return
	case faultHang:
		<-ctx.Done()
		return
	}
	if fe != nil {
		writeError(w, a, fe, now, true)
		return
	}

	sum := digest(c.texts)
	text, out, cut := reply(sum, maxOut)
	wait := p.sim.Latency.D() + time.Duration(out)*p.sim.LatencyPerOutputToken.D()
	if j := p.sim.Jitter; j > 0 {
		wait = time.Duration(float64(wait) * (1 + j*(2*jit-1)))
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			l.mu.Lock()
			l.stats.Canceled++
			l.mu.Unlock()
			return
		}
	}

	id := fmt.Sprintf("sim%012x", s.seq.Add(1))
	res := success{id: id, model: m.Name, created: now.Unix(), text: text, prompt: prompt, out: out, capped: cut}
	body := res.body(a)
	h := w.Header()
	switch a {
	case apiOpenAI:
		h["X-Request-Id"] = []string{"req_" + id}
		h["Openai-Processing-Ms"] = []string{strconv.FormatInt(wait.Milliseconds(), 10)}
	case apiAnthropic:
		h["Request-Id"] = []string{"req_" + id}
	}
	if !hide {
		setLimitHeaders(h, a, &v, now)
	}
	l.mu.Lock()
	if f == faultMalformed {
		l.stats.Faults++
	} else {
		l.stats.OK++
		l.stats.InputTokens += prompt
		l.stats.OutputTokens += out
	}
	l.mu.Unlock()
	if f == faultMalformed {
		body = body[:len(body)/2]
	}
	writeJSON(w, http.StatusOK, body)
}

// listModels answers GET /v1/models in the OpenAI list shape (each entry also carries Anthropic's
// "type": "model"), in config order, optionally restricted to one provider.
func (s *Server) listModels(w http.ResponseWriter, provider string) {
	type entry struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Type    string `json:"type"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	data := make([]entry, 0, len(s.lanes))
	for _, l := range s.lanes {
		if provider == "" || l.p.name == provider {
			data = append(data, entry{ID: l.model.Name, Object: "model", Type: "model", OwnedBy: l.p.name})
		}
	}
	writeJSON(w, http.StatusOK, mustJSON(map[string]any{"object": "list", "data": data}))
}
