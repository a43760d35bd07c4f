package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// The resilience tests run `llmbatch run` end to end against the in-process simulator with injected
// faults, inside testing/synctest (virtual time). A recording transport sits between the adapters and
// the simulator and notes every HTTP exchange — which prompt, which provider, when it was sent, when
// it ended, its status and the Retry-After it carried — so the tests can hold the engine to what it
// claims: the attempt count and attempt log match the wire, every wait after a retryable failure lies
// within the backoff bounds or honours the server's Retry-After, and dead providers see only a few
// requests per breaker period.

// exchange is one HTTP request the engine sent, as the wire saw it.
type exchange struct {
	provider   string
	id         string // the prompt's custom_id
	body       []byte // the request body as sent
	sent, done time.Time
	status     int           // 0 when no response arrived (reset, timeout)
	retryAfter time.Duration // what the response asked for (retry-after-ms, else retry-after)
}

// recorder is an http.RoundTripper wrapper that logs every exchange.
type recorder struct {
	mu sync.Mutex
	ex []exchange
}

// promptItem finds the prompt's index in a request body (newSimRun's prompts start "Label item N as").
var promptItem = regexp.MustCompile(`Label item (\d+) as`)

type recordingTransport struct {
	rec      *recorder
	provider string
	next     http.RoundTripper
}

func (rt recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	e := exchange{provider: rt.provider, sent: time.Now(), body: body}
	if m := promptItem.FindSubmatch(body); m != nil {
		var n int
		fmt.Sscan(string(m[1]), &n)
		e.id = fmt.Sprintf("p%05d", n)
	}
	resp, err := rt.next.RoundTrip(req)
	e.done = time.Now()
	if err == nil {
		e.status = resp.StatusCode
		e.retryAfter = provider.RetryAfter(resp.Header, e.done)
	}
	rt.rec.mu.Lock()
	rt.rec.ex = append(rt.rec.ex, e)
	rt.rec.mu.Unlock()
	return resp, err
}

// byID returns each prompt's exchanges in the order they were sent.
func (r *recorder) byID() map[string][]exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]exchange{}
	for _, e := range r.ex {
		out[e.id] = append(out[e.id], e)
	}
	for _, es := range out {
		slices.SortStableFunc(es, func(a, b exchange) int { return a.sent.Compare(b.sent) })
	}
	return out
}

// sentTo returns the send times of every request to provider, in order.
func (r *recorder) sentTo(provider string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Time
	for _, e := range r.ex {
		if e.provider == provider {
			out = append(out, e.sent)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// runRecorded is simRun.run with every provider's transport wrapped by a recorder.
func (s *simRun) runRecorded(args ...string) (int, time.Duration, *recorder) {
	s.t.Helper()
	rec := &recorder{}
	f := s.factory(nil)
	f.Transport = func(p *config.Provider) http.RoundTripper {
		return recordingTransport{rec: rec, provider: p.Name, next: s.srv.Transport()}
	}
	s.stderr.Reset()
	start := time.Now()
	code := Execute(context.Background(), f, append([]string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet"}, args...))
	return code, time.Since(start), rec
}

// wantTypes is the error types the engine may report for an exchange, from what the wire saw.
func wantTypes(e exchange) []string {
	switch {
	case e.status == 0:
		return []string{"network", "timeout"}
	case e.status == http.StatusOK:
		return []string{"", "invalid_response"}
	case e.status == http.StatusTooManyRequests:
		return []string{"rate_limit", "quota_exhausted"}
	case e.status == http.StatusUnauthorized:
		return []string{"auth"}
	case e.status == http.StatusBadRequest:
		return []string{"context_length", "quota_exhausted"}
	case e.status >= 500:
		return []string{"server_error", "overloaded"}
	}
	return []string{fmt.Sprintf("unexpected status %d", e.status)}
}

// retried reports whether the engine retries an error type after a wait.
func retried(typ string) bool {
	switch typ {
	case "rate_limit", "server_error", "overloaded", "network", "timeout", "invalid_response":
		return true
	}
	return false
}

// checkAttempts holds every result line to the wire: as many attempts as exchanges, one attempt-log
// entry per exchange with its lane, start time and error type, and after each retryable failure a
// recorded wait that honours the Retry-After (rate limits) or lies in the backoff band
// [d·(1−jitter), d·(1+jitter)], d = min(base·2^(n−1), max), and that really passed before the next
// exchange. It returns how many prompts needed more than one attempt.
func checkAttempts(t *testing.T, got map[string]results.Result, rec *recorder, r config.Retry) int {
	t.Helper()
	wire := rec.byID()
	multi := 0
	for id, res := range got {
		ex := wire[id]
		if len(ex) != res.Attempts {
			t.Fatalf("%s: attempts %d, but %d requests went out", id, res.Attempts, len(ex))
		}
		if len(res.AttemptLog) != res.Attempts {
			t.Fatalf("%s: %d attempt-log entries for %d attempts: %+v", id, len(res.AttemptLog), res.Attempts, res.AttemptLog)
		}
		if res.Attempts > 1 {
			multi++
		}
		failures, throttled := map[string]int{}, 0 // as the engine counts them for the backoff
		for i, a := range res.AttemptLog {
			e := ex[i]
			n := 0
			if a.ErrorType == "rate_limit" {
				throttled++
				n = throttled
			} else if retried(a.ErrorType) {
				failures[e.provider]++
				n = failures[e.provider]
			}
			if a.Provider != e.provider || a.Model == "" {
				t.Fatalf("%s attempt %d: logged lane %s/%s, sent to %s", id, i+1, a.Provider, a.Model, e.provider)
			}
			at, err := time.Parse(time.RFC3339Nano, a.At)
			if err != nil || e.sent.Sub(at) < 0 || e.sent.Sub(at) >= time.Millisecond {
				t.Fatalf("%s attempt %d: logged at %q, sent at %s (%v)", id, i+1, a.At, e.sent.UTC().Format(time.RFC3339Nano), err)
			}
			if !slices.Contains(wantTypes(e), a.ErrorType) {
				t.Fatalf("%s attempt %d: error type %q for an exchange with status %d, want one of %q", id, i+1, a.ErrorType, e.status, wantTypes(e))
			}
			last := i == len(res.AttemptLog)-1
			if res.Status == results.StatusOK && last != (a.ErrorType == "") {
				t.Fatalf("%s attempt %d: error %q in an ok result's log %+v", id, i+1, a.ErrorType, res.AttemptLog)
			}
			if last {
				continue
			}
			wait := time.Duration(a.WaitMS) * time.Millisecond
			if gap := ex[i+1].sent.Sub(e.done); gap < wait {
				t.Fatalf("%s attempt %d: logged a %v wait but the next request went out after %v", id, i+1, wait, gap)
			}
			if !retried(a.ErrorType) {
				if a.WaitMS != 0 {
					t.Fatalf("%s attempt %d: %s is failed over at once, but the log has a %v wait", id, i+1, a.ErrorType, wait)
				}
				continue
			}
			if wait == 0 && ex[i+1].provider != e.provider {
				continue // max_attempts used on this lane: on to the next one at once
			}
			if e.retryAfter > 0 {
				if wait < e.retryAfter.Truncate(time.Millisecond) {
					t.Fatalf("%s attempt %d: waited %v, the server asked for %v", id, i+1, wait, e.retryAfter)
				}
				continue
			}
			d := min(r.BaseDelay.D()<<(n-1), r.MaxDelay.D())
			// While the lane's breaker is closed (its other requests succeed) the backoff stops at its
			// second step (retry.Next): the band starts there.
			short := min(r.BaseDelay.D()<<(min(n, 2)-1), r.MaxDelay.D())
			lo := time.Duration(float64(short)*(1-r.Jitter)) - time.Millisecond
			hi := time.Duration(float64(d) * (1 + r.Jitter))
			if wait < lo || wait > hi {
				t.Fatalf("%s attempt %d (%s): waited %v, outside the backoff band [%v, %v]", id, i+1, a.ErrorType, wait, lo, hi)
			}
		}
	}
	return multi
}

// resilienceRetry is the retry policy of every resilience config.
var resilienceRetry = config.Retry{MaxAttempts: 6, BaseDelay: config.Duration(500 * time.Millisecond),
	MaxDelay: config.Duration(8 * time.Second), Jitter: 0.25}

// resilienceConfig has a cheap provider "flaky" (API api, sim section extra) and, when backupRPM > 0,
// a pricier healthy provider "backup" of the same category with that RPM.
func resilienceConfig(api, extra string, backupRPM int) string {
	cfg := fmt.Sprintf(`
defaults:
  concurrency: 16
  timeout: 2s
  retry: {max_attempts: 6, base_delay: 500ms, max_delay: 8s, jitter: 0.25}
  breaker: {failure_threshold: 5, open_for: 30s}
providers:
  - name: flaky
    type: sim
    models:
      - {name: f-small, category: small, context_window: 32000, rpm: 600, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {api: %s, latency: 100ms, seed: 5, %s}
`, api, extra)
	if backupRPM > 0 {
		cfg += fmt.Sprintf(`
  - name: backup
    type: sim
    models:
      - {name: b-small, category: small, context_window: 128000, rpm: %d, input_per_mtok: 0.5, output_per_mtok: 2}
    sim: {api: anthropic, latency: 100ms}
`, backupRPM)
	}
	return cfg
}

// TestResilienceTransientFaults: random transient failures on the only provider are retried on it
// until every prompt is answered, with the retries in `attempts`, the attempt log and the waits
// matching the wire.
func TestResilienceTransientFaults(t *testing.T) {
	for _, tc := range []struct {
		name, api, faults string
		types             []string // error types that must show up in the attempt logs
	}{
		{"5xx", "openai", "server_error: 0.1, unavailable: 0.05", []string{"server_error"}},
		{"529", "anthropic", "overloaded: 0.15", []string{"overloaded"}},
		{"gemini-503", "gemini", "server_error: 0.05, overloaded: 0.1", []string{"server_error", "overloaded"}},
		{"reset", "openai", "reset: 0.15", []string{"network"}},
		{"hang", "openai", "hang: 0.1", []string{"timeout"}},
		{"malformed", "anthropic", "malformed: 0.15", []string{"invalid_response"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, resilienceConfig(tc.api, "faults: {"+tc.faults+"}", 0), 200, 40)
				code, elapsed, rec := s.runRecorded("-v")
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, s.stderr.String())
				}
				got := s.allOK()
				multi := checkAttempts(t, got, rec, resilienceRetry)
				seen := map[string]int{}
				for _, r := range got {
					for _, a := range r.AttemptLog {
						seen[a.ErrorType]++
					}
				}
				st := s.stats("flaky/f-small")
				t.Logf("%s: %d prompts ok in %s (virtual), %d retried, attempt errors %v, %d faults injected",
					tc.name, len(got), elapsed, multi, seen, st.Faults)
				for _, typ := range tc.types {
					if seen[typ] == 0 {
						t.Errorf("no %s attempt in any log: %v", typ, seen)
					}
				}
				if failed := len(rec.ex) - len(got); failed != st.Faults || multi == 0 {
					t.Errorf("%d failed exchanges, %d faults injected, %d prompts retried", failed, st.Faults, multi)
				}
				if tc.name == "hang" {
					// A hung attempt ends at the 2 s per-attempt timeout, not earlier and not much later.
					for _, e := range rec.ex {
						if e.status == 0 {
							if d := e.done.Sub(e.sent); d < 2*time.Second || d > 2*time.Second+10*time.Millisecond {
								t.Fatalf("a hung request ended after %v, want the 2s timeout", d)
							}
						}
					}
				}
			})
		})
	}
}

// TestResilienceDeadProvider: the cheap provider fails every request for the whole run; every
// prompt ends ok on the healthy backup, and the dead provider receives its initial burst and then
// only a few trials per breaker open period.
func TestResilienceDeadProvider(t *testing.T) {
	for _, tc := range []struct{ api, faults string }{
		{"openai", "server_error: 1.0"},
		{"anthropic", "overloaded: 1.0"},
		{"gemini", "unavailable: 1.0"},
		{"openai", "hang: 1.0"},
		{"anthropic", "reset: 1.0"},
	} {
		t.Run(tc.api+"/"+tc.faults, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The backup's 120 RPM stretches the run over several 30 s open periods.
				s := newSimRun(t, resilienceConfig(tc.api, "faults: {"+tc.faults+"}", 120), 300, 40)
				code, elapsed, rec := s.runRecorded("-v")
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, failures(s))
				}
				got := s.allOK()
				checkAttempts(t, got, rec, resilienceRetry)
				for id, r := range got {
					if r.Provider != "backup" {
						t.Fatalf("%s answered by %s", id, r.Provider)
					}
				}
				dead := rec.sentTo("flaky")
				if st := s.stats("flaky/f-small"); st.Requests != len(dead) || st.OK != 0 {
					t.Fatalf("simulator saw %d requests (%d ok), the wire %d", st.Requests, st.OK, len(dead))
				}
				// First burst: at most the 16 in flight when the failures began, plus the threshold.
				// After that the breaker admits one trial per 30 s open period; allow two.
				periods := int(elapsed/(30*time.Second)) + 1
				bound := 16 + 5 + 2*periods
				later := 0
				for _, at := range dead {
					if at.Sub(dead[0]) > 5*time.Second {
						later++
					}
				}
				t.Logf("dead provider: %d requests (%d after the first 5 s) over %s (virtual), bound %d", len(dead), later, elapsed, bound)
				if len(dead) > bound {
					t.Errorf("the dead provider got %d requests in %s, want at most %d: %v", len(dead), elapsed, bound, offsets(dead))
				}
				if later > 2*periods {
					t.Errorf("%d requests reached the dead provider after its breaker opened, want at most %d: %v", later, 2*periods, offsets(dead))
				}
				// The backup alone does 120 a minute; the dead lane must not slow the run down.
				if elapsed > 3*time.Minute {
					t.Errorf("the run took %s; the backup alone needs about 2.5m", elapsed)
				}
			})
		})
	}
}

// failures summarises the error lines of a run, for failure messages.
func failures(s *simRun) string {
	var b strings.Builder
	n := 0
	for _, r := range s.lines() {
		if r.Status != results.StatusOK {
			if n++; n <= 3 {
				fmt.Fprintf(&b, "%s: %+v attempts %d %+v\n", r.CustomID, r.Error, r.Attempts, r.AttemptLog)
			}
		}
	}
	fmt.Fprintf(&b, "%d error lines", n)
	return b.String()
}

// offsets renders send times relative to the first, for failure messages.
func offsets(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(ts[0]).Round(time.Millisecond).String()
	}
	return out
}

// TestResilienceProviderDisabled: a rejected key (401) or an exhausted account (insufficient_quota)
// is never retried on the provider: it is disabled with one warning and the work fails over.
func TestResilienceProviderDisabled(t *testing.T) {
	for _, tc := range []struct{ name, api, faults, typ string }{
		{"auth", "openai", "auth: 1.0", "auth"},
		{"auth-gemini", "gemini", "auth: 1.0", "auth"},
		{"insufficient_quota", "openai", "insufficient_quota: 1.0", "quota_exhausted"},
		{"credit-balance", "anthropic", "insufficient_quota: 1.0", "quota_exhausted"},
		{"gemini-limit-0", "gemini", "insufficient_quota: 1.0", "quota_exhausted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, resilienceConfig(tc.api, "faults: {"+tc.faults+"}", 600), 200, 40)
				code, _, rec := s.runRecorded("-v")
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, s.stderr.String())
				}
				got := s.allOK()
				checkAttempts(t, got, rec, resilienceRetry)
				if n := strings.Count(s.stderr.String(), "provider disabled"); n != 1 {
					t.Errorf("%d 'provider disabled' warnings, want exactly one:\n%s", n, s.stderr.String())
				}
				if !strings.Contains(s.stderr.String(), "provider=flaky") || !strings.Contains(s.stderr.String(), "error="+tc.typ) {
					t.Errorf("the warning does not name the provider and the error:\n%s", s.stderr.String())
				}
				for id, r := range got {
					if r.Provider != "backup" {
						t.Fatalf("%s answered by %s", id, r.Provider)
					}
					flaky := 0
					for _, a := range r.AttemptLog {
						if a.Provider == "flaky" {
							flaky++
							if a.ErrorType != tc.typ || a.WaitMS != 0 {
								t.Fatalf("%s: flaky attempt %+v, want %s with no wait", id, a, tc.typ)
							}
						}
					}
					if flaky > 1 {
						t.Fatalf("%s was retried on the disabled provider: %+v", id, r.AttemptLog)
					}
				}
				// Only requests already past the check when the first answer came back: at most the
				// 16 in flight.
				dead := rec.sentTo("flaky")
				t.Logf("%s: %d requests reached the disabled provider", tc.name, len(dead))
				if len(dead) == 0 || len(dead) > 16 {
					t.Errorf("the disabled provider got %d requests, want 1..16: %v", len(dead), offsets(dead))
				}
			})
		})
	}
}

// TestResilienceProviderRecovers: the cheap provider answers 503 to everything for its first minute
// (sim.faults_for), then recovers. Its breaker opens, half-opens every open period, a trial finally
// succeeds and the lane takes the work back from the slower, pricier backup. Alone, with every
// breaker open, prompts wait for the trial instead of failing at once.
func TestResilienceProviderRecovers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		backupRPM int
	}{{"with backup", 60}, {"alone", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, resilienceConfig("openai", "faults: {unavailable: 1.0}, faults_for: 1m", tc.backupRPM), 400, 40)
				code, elapsed, rec := s.runRecorded("-v")
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, failures(s))
				}
				got := s.allOK()
				checkAttempts(t, got, rec, resilienceRetry)
				perProvider := map[string]int{}
				for _, r := range got {
					perProvider[r.Provider]++
				}
				sent := rec.sentTo("flaky")
				var firstOK time.Time
				for _, es := range rec.byID() {
					for _, e := range es {
						if e.provider == "flaky" && e.status == http.StatusOK && (firstOK.IsZero() || e.sent.Before(firstOK)) {
							firstOK = e.sent
						}
					}
				}
				st := s.stats("flaky/f-small")
				t.Logf("recovery %s: %d prompts in %s (virtual), per provider %v; flaky: %d requests, %d faults, first success at +%s",
					tc.name, len(got), elapsed, perProvider, st.Requests, st.Faults, firstOK.Sub(sent[0]))
				if firstOK.IsZero() || firstOK.Sub(sent[0]) < time.Minute {
					t.Fatalf("first success on the recovering provider at +%s", firstOK.Sub(sent[0]))
				}
				// Down for a minute, open_for 30 s: the first trial after the recovery comes within
				// one open period (plus backoff slack).
				if d := firstOK.Sub(sent[0]); d > time.Minute+30*time.Second+10*time.Second {
					t.Errorf("the lane took %s to be tried again after recovering at 1m", d)
				}
				// While down: the initial burst and a couple of trials per open period.
				if bound := 16 + 5 + 2*3; st.Faults > bound {
					t.Errorf("%d requests hit the provider while it was down, want at most %d: %v", st.Faults, bound, offsets(sent))
				}
				// After recovery the cheap lane takes the work back: the backup at 60 RPM admits 60
				// a minute (its window's share at once, at 0 s and again at 61 s), so it answered at
				// most 120 of the 400 prompts in this time.
				if perProvider["flaky"] < 400-120 {
					t.Errorf("the recovered lane answered only %d prompts: %v", perProvider["flaky"], perProvider)
				}
				if elapsed > 2*time.Minute {
					t.Errorf("the run took %s: the recovered lane did not take work again", elapsed)
				}
			})
		})
	}
}

// TestResilienceContextLength: the provider's real context window is smaller than the config says,
// so the simulator answers 400 context_length_exceeded; each prompt moves at once to the model with
// the larger window and succeeds there, and never retries the small one.
func TestResilienceContextLength(t *testing.T) {
	for _, api := range []string{"openai", "anthropic", "gemini"} {
		t.Run(api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// ~6,000-token prompts: within the configured 32,000 but above the real 4,000.
				s := newSimRun(t, resilienceConfig(api, "faults: {}", 600), 30, 24000)
				s.srv = sim.New(withWindow(t, s.cfg, "flaky", 4000), sim.Options{Now: time.Now, Seed: 7})
				code, _, rec := s.runRecorded("-v")
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, s.stderr.String())
				}
				got := s.allOK()
				checkAttempts(t, got, rec, resilienceRetry)
				for id, r := range got {
					if r.Provider != "backup" || r.Attempts != 2 || r.AttemptLog[0].Provider != "flaky" ||
						r.AttemptLog[0].ErrorType != "context_length" || r.AttemptLog[0].WaitMS != 0 {
						t.Fatalf("%s: %s on %s after %d attempts %+v, want context_length on flaky then ok on backup", id, r.Status, r.Provider, r.Attempts, r.AttemptLog)
					}
				}
				if st := s.stats("flaky/f-small"); st.Invalid != len(got) {
					t.Errorf("the simulator refused %d requests for context length, want one per prompt (%d)", st.Invalid, len(got))
				}
				if strings.Contains(s.stderr.String(), "provider disabled") {
					t.Errorf("a context-length error disabled a provider:\n%s", s.stderr.String())
				}
			})
		})
	}
}

// withWindow returns a copy of cfg in which provider's models have the given context window: what
// the simulator enforces when the config overstates it.
func withWindow(t *testing.T, cfg *config.Config, provider string, window int) *config.Config {
	t.Helper()
	out := *cfg
	out.Providers = nil
	found := false
	for _, p := range cfg.Providers {
		cp := *p
		if p.Name == provider {
			found = true
			cp.Models = nil
			for _, m := range p.Models {
				mm := *m
				mm.ContextWindow = window
				cp.Models = append(cp.Models, &mm)
			}
		}
		out.Providers = append(out.Providers, &cp)
	}
	if !found {
		t.Fatalf("no provider %s", provider)
	}
	return &out
}

// TestResilienceNoCapableLane: when no capable lane remains, each prompt's error line says why —
// status error, the classifier's type, the HTTP status and a message naming the failure and the
// lanes — and the run exits 1.
func TestResilienceNoCapableLane(t *testing.T) {
	for _, tc := range []struct {
		name, faults string
		bytes        int
		typ          string
		status       int
		message      []string
	}{
		{"key rejected", "auth: 1.0", 40, "auth", 401, []string{"Incorrect API key", "no other capable lane", "provider disabled"}},
		{"quota", "insufficient_quota: 1.0", 40, "quota_exhausted", 429, []string{"exceeded your current quota", "no other capable lane"}},
		{"real window too small", "", 24000, "context_length", 400, []string{"maximum context length", "no other capable lane"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, resilienceConfig("openai", "faults: {"+tc.faults+"}", 0), 20, tc.bytes)
				s.srv = sim.New(withWindow(t, s.cfg, "flaky", 4000), sim.Options{Now: time.Now, Seed: 7})
				code, _, rec := s.runRecorded("-v")
				if code != ExitPartial {
					t.Fatalf("exit %d, want %d: %s", code, ExitPartial, s.stderr.String())
				}
				got := s.byID()
				checkAttempts(t, got, rec, resilienceRetry)
				for id, r := range got {
					if r.Status != results.StatusError || r.Error == nil || r.Error.Type != tc.typ || r.Error.StatusCode != tc.status {
						t.Fatalf("%s: %s %+v, want error %s %d", id, r.Status, r.Error, tc.typ, tc.status)
					}
					for _, m := range tc.message {
						if !strings.Contains(r.Error.Message, m) {
							t.Fatalf("%s: message %q does not say %q", id, r.Error.Message, m)
						}
					}
					if r.Attempts > 1 {
						t.Fatalf("%s: %d attempts; the error is not retryable on the only lane", id, r.Attempts)
					}
				}
			})
		})
	}
}

// TestResilienceNoLaneFits: a prompt larger than every configured context window is refused before
// anything is sent, with an error line that says so, next to prompts that succeed.
func TestResilienceNoLaneFits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, resilienceConfig("openai", "faults: {}", 0), 1, 200000)
		code, _, rec := s.runRecorded("-v")
		if code != ExitPartial {
			t.Fatalf("exit %d, want %d: %s", code, ExitPartial, s.stderr.String())
		}
		r := s.byID()["p00000"]
		if r.Status != results.StatusError || r.Error == nil || r.Error.Type != "bad_request" || r.Attempts != 0 {
			t.Fatalf("%+v %+v", r, r.Error)
		}
		if len(rec.ex) != 0 {
			t.Errorf("%d requests sent for a prompt no lane can hold", len(rec.ex))
		}
		t.Logf("error line: %s: %s", r.Error.Type, r.Error.Message)
		// A 50,000-token prompt: the analyser calls it large, and the only lane is small (and too small).
		if !strings.Contains(r.Error.Message, "no lane can serve it") || strings.Contains(r.Error.Message, "no lanes configured") {
			t.Errorf("the message does not say why: %q", r.Error.Message)
		}
	})
}

// TestResilienceRetryAfterStorm: the config claims 600 RPM, the simulator allows 10 and answers
// every excess request 429 with Retry-After (and no limit headers on success). Every retry waits at
// least the Retry-After, so the run lasts at least two full windows and the 429s stay few.
func TestResilienceRetryAfterStorm(t *testing.T) {
	for _, api := range []string{"openai", "anthropic"} {
		t.Run(api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, fmt.Sprintf(`
defaults: {concurrency: 8, timeout: 10s, retry: {max_attempts: 6, base_delay: 500ms, max_delay: 8s, jitter: 0.25}}
providers:
  - name: flaky
    type: sim
    models:
      - {name: f-small, category: small, rpm: 600}
    sim: {api: %s, latency: 50ms, limits: {f-small: {rpm: 10, hide_headers: true}}}
`, api), 30, 40)
				code, elapsed, rec := s.runRecorded("-v")
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, s.stderr.String())
				}
				got := s.allOK()
				checkAttempts(t, got, rec, resilienceRetry)
				st := s.stats("flaky/f-small")
				var longest time.Duration
				var first time.Time
				for _, e := range rec.ex {
					if e.status == http.StatusTooManyRequests {
						if e.retryAfter <= 0 {
							t.Fatalf("a 429 without Retry-After: the test proves nothing")
						}
						if first.IsZero() || e.done.Before(first) {
							first = e.done
						}
						longest = max(longest, e.retryAfter)
					}
				}
				t.Logf("%s: %d prompts in %s (virtual), %d 429s, longest Retry-After %s, at most %d in a window",
					api, len(got), elapsed, st.RateLimited, longest, st.MaxInWindow)
				if st.RateLimited == 0 {
					t.Fatal("no 429: the test proves nothing")
				}
				if elapsed < longest || elapsed < 2*time.Minute {
					t.Errorf("finished in %s; the server asked for waits of up to %s and 30 prompts at 10 RPM need 2 windows", elapsed, longest)
				}
				if st.MaxInWindow > 10 {
					t.Errorf("the simulator admitted %d in a window, limit 10", st.MaxInWindow)
				}
				// After the first 429 the lane is paused; later 429s come only from requests already
				// in flight or from a window that has not yet slid far enough.
				if st.RateLimited > 16 {
					t.Errorf("%d 429s: the Retry-After did not pause the lane", st.RateLimited)
				}
			})
		})
	}
}

// TestResilienceMaxAttemptsPerLane: a prompt that uses up max_attempts on a lane that keeps failing
// (its breaker not yet open) moves on to its next lane instead of failing, and the waits match the
// per-lane backoff.
func TestResilienceMaxAttemptsPerLane(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := strings.Replace(resilienceConfig("openai", "faults: {server_error: 1.0}", 600),
			"  - name: flaky\n    type: sim\n", "  - name: flaky\n    type: sim\n    breaker: {failure_threshold: 100, open_for: 30s}\n"+
				"    retry: {max_attempts: 3}\n", 1) // used up before the lane's health score sends the prompt elsewhere
		s := newSimRun(t, cfg, 1, 40)
		code, _, rec := s.runRecorded("-v")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		got := s.allOK()
		checkAttempts(t, got, rec, resilienceRetry)
		r := got["p00000"]
		var lanes []string
		for _, a := range r.AttemptLog {
			lanes = append(lanes, a.Provider)
		}
		want := []string{"flaky", "flaky", "flaky", "backup"}
		if r.Provider != "backup" || !slices.Equal(lanes, want) {
			t.Errorf("answered by %s after attempts on %v; want max_attempts (3) on flaky, then backup", r.Provider, lanes)
		}
	})
}
