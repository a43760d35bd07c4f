package cmd

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/results"
)

// faultConfig has a cheap provider with the given faults and a pricier healthy one of the same
// category, so failover has somewhere to go.
func faultConfig(faults string, withBackup bool) string {
	cfg := fmt.Sprintf(`
defaults:
  concurrency: 32
  timeout: 2s
  retry: {max_attempts: 6, base_delay: 500ms, max_delay: 8s, jitter: 0.25}
  breaker: {failure_threshold: 5, open_for: 30s}
providers:
  - name: flaky
    type: sim
    models:
      - {name: f-small, category: small, context_window: 4000, rpm: 600, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 100ms, seed: 3, faults: %s}
`, faults)
	if withBackup {
		cfg += `
  - name: backup
    type: sim
    models:
      - {name: b-small, category: small, context_window: 100000, rpm: 600, input_per_mtok: 0.5, output_per_mtok: 2}
    sim: {latency: 100ms, api: anthropic}
`
	}
	return cfg
}

func TestFaultsRandomServerErrorsAreRetried(t *testing.T) {
	for _, faults := range []string{"{server_error: 0.1, unavailable: 0.05}", "{overloaded: 0.15}", "{reset: 0.1}", "{malformed: 0.1}", "{hang: 0.05}"} {
		t.Run(faults, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, faultConfig(faults, false), 200, 40)
				code, elapsed := s.run("-v")
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, s.stderr.String())
				}
				retried := 0
				for _, r := range s.allOK() {
					if r.Attempts > 1 {
						retried++
						if len(r.AttemptLog) != r.Attempts || r.AttemptLog[0].ErrorType == "" || r.AttemptLog[0].Provider != "flaky" {
							t.Fatalf("%s: attempt log %+v for %d attempts", r.CustomID, r.AttemptLog, r.Attempts)
						}
					}
				}
				st := s.stats("flaky/f-small")
				t.Logf("%s: %d prompts ok in %s, %d retried, %d faults injected", faults, len(s.prompts), elapsed, retried, st.Faults)
				if retried == 0 || st.Faults == 0 {
					t.Errorf("no retries (%d) or no faults (%d): the test proves nothing", retried, st.Faults)
				}
			})
		})
	}
}

func TestFaultsDeadProviderFailsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, faultConfig("{server_error: 1.0}", true), 300, 40)
		code, elapsed := s.run()
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		for id, r := range s.allOK() {
			if r.Provider != "backup" {
				t.Fatalf("%s answered by %s", id, r.Provider)
			}
		}
		// The breaker opens after 5 failures and lets one trial through per 30 s open period; the
		// requests in flight when it opened also land. Allow the 32 in flight plus a few per period.
		dead := s.stats("flaky/f-small").Requests
		bound := 32 + 5 + 2*int(elapsed/(30*time.Second)+1)
		t.Logf("dead provider: %d requests over %s (bound %d)", dead, elapsed, bound)
		if dead > bound {
			t.Errorf("the dead provider got %d requests in %s, want at most %d", dead, elapsed, bound)
		}
	})
}

func TestFaultsRejectedKeyDisablesProvider(t *testing.T) {
	for _, faults := range []string{"{auth: 1.0}", "{insufficient_quota: 1.0}"} {
		t.Run(faults, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, faultConfig(faults, true), 200, 40)
				if code, _ := s.run(); code != ExitOK {
					t.Fatalf("exit %d: %s", code, s.stderr.String())
				}
				s.allOK()
				if n := strings.Count(s.stderr.String(), "provider disabled"); n != 1 {
					t.Errorf("%d 'provider disabled' warnings, want exactly one:\n%s", n, s.stderr.String())
				}
				// Never retried there: at most the requests already in flight when the first failed.
				if got := s.stats("flaky/f-small").Requests; got > 32 {
					t.Errorf("the disabled provider got %d requests", got)
				}
			})
		})
	}
}

func TestFaultsContextLengthMovesToLargerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// ~6,000 tokens: too large for the flaky model's 4,000-token window, fine for the backup's.
		s := newSimRun(t, faultConfig("{}", true), 20, 24000)
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		for id, r := range s.allOK() {
			if r.Provider != "backup" {
				t.Errorf("%s answered by %s, whose window is too small", id, r.Provider)
			}
		}
	})
}

func TestFaultsNoCapableLaneLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, faultConfig("{auth: 1.0}", false), 20, 40)
		code, _ := s.run()
		if code != ExitPartial {
			t.Fatalf("exit %d, want 1: %s", code, s.stderr.String())
		}
		for id, r := range s.byID() {
			if r.Status != results.StatusError || r.Error == nil || r.Error.Type != "auth" || !strings.Contains(r.Error.Message, "no other capable lane") {
				t.Fatalf("%s: %+v %+v", id, r.Status, r.Error)
			}
		}
	})
}

func TestFaultsRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The config claims 600 RPM; the simulator allows 10 and sends Retry-After on every 429, and
		// no rate-limit headers on successes, so only the 429s can teach the client.
		s := newSimRun(t, `
defaults: {concurrency: 8, timeout: 10s, retry: {max_attempts: 6, base_delay: 100ms, max_delay: 2s}}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, rpm: 600}
    sim: {latency: 50ms, limits: {m-small: {rpm: 10, hide_headers: true}}}
`, 30, 40)
		code, elapsed := s.run()
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		st := s.stats("s1/m-small")
		t.Logf("retry-after: %d prompts in %s with %d 429s, at most %d in a window", len(s.prompts), elapsed, st.RateLimited, st.MaxInWindow)
		// 30 prompts at 10 a minute cannot finish before two full windows have passed.
		if elapsed < 2*time.Minute {
			t.Errorf("finished in %s: the Retry-After waits were not honoured", elapsed)
		}
		if st.MaxInWindow > 10 {
			t.Errorf("the simulator admitted %d in a window", st.MaxInWindow)
		}
	})
}

func TestFaultsProviderRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The only provider fails every request for its first minute, then recovers: the breaker
		// opens, waits, half-opens, a trial succeeds and the lane serves everything.
		s := newSimRun(t, `
defaults:
  concurrency: 16
  timeout: 5s
  retry: {max_attempts: 6, base_delay: 1s, max_delay: 30s}
  breaker: {failure_threshold: 5, open_for: 20s}
providers:
  - name: s1
    type: sim
    models: [{name: m-small, category: small, rpm: 600}]
    sim: {latency: 100ms, faults: {unavailable: 1.0}, faults_for: 1m}
`, 100, 40)
		code, elapsed := s.run()
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		st := s.stats("s1/m-small")
		t.Logf("recovery: %d prompts ok after %s; %d requests, %d faults", len(s.prompts), elapsed, st.Requests, st.Faults)
		if elapsed < time.Minute {
			t.Errorf("finished in %s, before the provider recovered", elapsed)
		}
		// While it was down the breaker let through a few requests per 20 s open period, not a storm.
		if st.Faults > 16+5+3*3 {
			t.Errorf("%d requests hit the provider while it was down", st.Faults)
		}
	})
}
