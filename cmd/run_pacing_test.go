package cmd

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Issue 11's proofs: for each way a provider enforces its per-minute limits — a sliding 60 s window
// (admits a minute's share at once), a sliding 10 s window (a sixth of it at once) and per-minute
// limits enforced per second (1 s quanta: no burst above one second's share) — a run finishes
// within 5% (plus one request's latency) of the least time the limits allow, with under 1% of its
// requests answered 429 (3% while the limits are being learned). Each test prints both times.

// enforcement is how the simulator enforces a lane's limits, and what the client's config says of it.
type enforcement struct {
	name    string
	window  time.Duration // the sliding window; 0 = 60 s
	quantum time.Duration // the sub-window; 0 = none
}

var enforcements = []enforcement{
	{name: "60s-window", window: time.Minute},
	{name: "10s-window", window: 10 * time.Second},
	{name: "1s-quanta", quantum: time.Second},
}

// yaml is the enforcement's window and quantum fields for a flow mapping, with a trailing comma.
func (e enforcement) yaml() string {
	var f []string
	if e.window > 0 {
		f = append(f, "window: "+e.window.String())
	}
	if e.quantum > 0 {
		f = append(f, "quantum: "+e.quantum.String())
	}
	if len(f) == 0 {
		return ""
	}
	return strings.Join(f, ", ") + ", "
}

// short reports a window shorter than a minute (the 10 s one).
func (e enforcement) short() bool { return e.window > 0 && e.window < time.Minute }

// period is the enforcement's smallest window and perMinute's share of it.
func (e enforcement) period() time.Duration {
	switch {
	case e.quantum > 0:
		return e.quantum
	case e.window > 0:
		return e.window
	}
	return time.Minute
}

// share is how many requests of cost tokens one period admits under rpm and tpm (0 = none).
func (e enforcement) share(rpm, tpm, cost int) int {
	n := int(int64(rpm) * int64(e.period()) / int64(time.Minute))
	if tpm > 0 {
		n = min(n, int(int64(tpm)*int64(e.period())/int64(time.Minute))/cost)
	}
	return n
}

// pacedLane is one lane's capacity for leastTime: share requests every period.
type pacedLane struct {
	share  int
	period time.Duration
}

// leastTime is the least time the limits allow for n requests over lanes that each admit their share
// at once and again every period, plus one request's latency: the smallest T at which the lanes
// together have admitted n, with a full window's burst at time 0.
func leastTime(n int, latency time.Duration, lanes ...pacedLane) time.Duration {
	admitted := func(t time.Duration) int {
		sum := 0
		for _, l := range lanes {
			sum += l.share * int(t/l.period+1)
		}
		return sum
	}
	best := time.Duration(-1)
	for _, l := range lanes {
		for k := time.Duration(0); ; k++ {
			if t := k * l.period; admitted(t) >= n {
				if best < 0 || t < best {
					best = t
				}
				break
			}
		}
	}
	return best + latency
}

// checkPace logs and checks the wall time against the least time and the share of 429s.
func checkPace(t *testing.T, s *simRun, elapsed, least, latency time.Duration, maxRejectedShare float64, lanes ...string) {
	t.Helper()
	requests, rejected := 0, 0
	for _, l := range lanes {
		st := s.stats(l)
		requests += st.Requests
		rejected += st.RateLimited
	}
	limit := time.Duration(1.05*float64(least)) + latency
	t.Logf("least time the limits allow %s, took %s (%.1f%% over; bound %s); %d of %d requests answered 429 (%.2f%%)",
		least.Round(time.Millisecond), elapsed.Round(time.Millisecond), 100*(float64(elapsed)/float64(least)-1),
		limit.Round(time.Millisecond), rejected, requests, 100*float64(rejected)/float64(requests))
	if elapsed > limit {
		t.Errorf("took %s, want at most %s (5%% over the least %s plus one latency)", elapsed, limit, least)
	}
	if float64(rejected) >= maxRejectedShare*float64(requests) {
		t.Errorf("%d of %d requests answered 429, want under %.0f%%", rejected, requests, 100*maxRejectedShare)
	}
}

const pacingLatency = 200 * time.Millisecond
const pacingMaxLatency = pacingLatency * 6 / 5 // with the simulator's jitter 0.2

// paceConfig is a one-lane config: client model fields, and the simulator's limits.
func paceConfig(client, simLimits string) string {
	return fmt.Sprintf(`
defaults: {concurrency: 1000, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, %s input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim:
      latency: 200ms
      jitter: 0.2
      limits: {m-small: {%s}}
`, client, simLimits)
}

// rpmFor returns the RPM and prompt count of a RPM-bound lane under e: a minute's 600 requests
// over 60 s windows and 1 s quanta (10 a second), 3,600 RPM over 10 s windows (600 a window), and
// enough prompts for two and a half windows, or thirty quanta.
func rpmFor(e enforcement) (rpm, n int) {
	switch {
	case e.quantum > 0:
		return 600, 300
	case e.short():
		return 3600, 1500
	}
	return 600, 1500
}

func TestPaceRPMBound(t *testing.T) {
	for _, e := range enforcements {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rpm, n := rpmFor(e)
				lim := fmt.Sprintf("%srpm: %d", e.yaml(), rpm)
				s := newSimRun(t, paceConfig(lim+",", lim), n, 40)
				_, elapsed := s.runOK()
				least := leastTime(n, pacingLatency, pacedLane{e.share(rpm, 0, 1), e.period()})
				checkPace(t, s, elapsed, least, pacingMaxLatency, 0.01, "s1/m-small")
			})
		})
	}
}

func TestPaceTPMBound(t *testing.T) {
	for _, e := range enforcements {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// About 167 tokens a request at admission (400-byte prompts, max_tokens 50): 102,000 TPM
				// admit 10 a second, 610 a minute; six times as much over 10 s windows.
				tpm, n := 102_000, 1500
				switch {
				case e.quantum > 0:
					n = 300
				case e.short():
					tpm = 6 * 102_000
				}
				lim := fmt.Sprintf("%srpm: 100000, tpm: %d", e.yaml(), tpm)
				s := newSimRun(t, paceConfig(lim+",", lim), n, 400)
				_, elapsed := s.runOK()
				st := s.stats("s1/m-small")
				cost := (st.InputTokens+st.OK-1)/st.OK + 50 // the simulator's admission cost
				least := leastTime(n, pacingLatency, pacedLane{e.share(100000, tpm, cost), e.period()})
				t.Logf("%d tokens a request at admission: %d requests a period", cost, e.share(100000, tpm, cost))
				checkPace(t, s, elapsed, least, pacingMaxLatency, 0.01, "s1/m-small")
			})
		})
	}
}

func TestPaceThreeProviders(t *testing.T) {
	for _, e := range enforcements {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Shares of 120, 240 and 600 a window (10, 20 and 50 a second with quanta).
				scale := 1
				n := 1920
				switch {
				case e.quantum > 0:
					scale, n = 5, 1920
				case e.short():
					scale = 6
				}
				var cfg strings.Builder
				cfg.WriteString("defaults: {concurrency: 1000, timeout: 30s}\nproviders:\n")
				var lanes []pacedLane
				var names []string
				for i, p := range []struct {
					name, api string
					rpm       int
				}{{"cheap", "openai", 120}, {"mid", "anthropic", 240}, {"fast", "gemini", 600}} {
					lim := fmt.Sprintf("%srpm: %d", e.yaml(), p.rpm*scale)
					fmt.Fprintf(&cfg, `  - name: %s
    type: sim
    models:
      - {name: m-%d, category: small, %s, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 200ms, jitter: 0.2, api: %s, limits: {m-%d: {%s}}}
`, p.name, i, lim, p.api, i, lim)
					lanes = append(lanes, pacedLane{e.share(p.rpm*scale, 0, 1), e.period()})
					names = append(names, fmt.Sprintf("%s/m-%d", p.name, i))
				}
				s := newSimRun(t, cfg.String(), n, 40)
				got, elapsed := s.runOK("--prefer", "speed")
				perLane := map[string]int{}
				for _, r := range got {
					perLane[r.Provider]++
				}
				t.Logf("per provider %v", perLane)
				checkPace(t, s, elapsed, leastTime(n, pacingLatency, lanes...), pacingMaxLatency, 0.01, names...)
			})
		})
	}
}

// Learned: the config states no limits; overstated: it states twice the real ones. Either way the
// simulator's headers (per-minute figures, whatever the window) and reset times teach the lane
// its limits and how they are enforced.
func TestPaceLearned(t *testing.T)    { testPaceLearned(t, 0) }
func TestPaceOverstated(t *testing.T) { testPaceLearned(t, 2) }

func testPaceLearned(t *testing.T, overstate int) {
	for _, e := range enforcements {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rpm, n := rpmFor(e)
				if e.quantum > 0 {
					n = 600 // the first second's overshoot stays under 3%
				}
				client := ""
				if overstate > 0 {
					client = fmt.Sprintf("rpm: %d,", overstate*rpm)
				}
				s := newSimRun(t, paceConfig(client, fmt.Sprintf("%srpm: %d", e.yaml(), rpm)), n, 40)
				_, elapsed := s.runOK()
				least := leastTime(n, pacingLatency, pacedLane{e.share(rpm, 0, 1), e.period()})
				checkPace(t, s, elapsed, least, pacingMaxLatency, 0.03, "s1/m-small")
			})
		})
	}
}

// A 10 s window of 3,600 RPM whose headers state the window's figure, 600: the configured window
// says how to read it, so the lane keeps 3,600 RPM instead of reading 600 a minute.
func TestPaceHeaderFigureDoesNotOverrideConfiguredWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, paceConfig("window: 10s, rpm: 3600,", "window: 10s, rpm: 3600, headers: window"), 1500, 40)
		_, elapsed := s.runOK()
		e := enforcement{window: 10 * time.Second}
		least := leastTime(1500, pacingLatency, pacedLane{e.share(3600, 0, 1), e.period()})
		checkPace(t, s, elapsed, least, pacingMaxLatency, 0.01, "s1/m-small")
	})
}

// A provider that answers 30% of requests 429 at random is busy, not limited: the run retries each
// after its Retry-After or a short backoff and does not slow down, finishing 200 prompts within 3×
// the time they take without the 429s — with and without limit headers and Retry-After on them.
func TestPaceRandomRateLimits(t *testing.T) {
	const base = `
defaults: {concurrency: 16, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim:
      latency: 1s
      jitter: 0.2
      limits: {m-small: {rpm: 6000}}
`
	var without time.Duration
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, base, 200, 40)
		_, without = s.runOK()
	})
	for _, tc := range []struct{ name, sim string }{
		{"no headers", "      faults: {rate_limit: 0.3}\n"},
		{"retry-after 1s", "      faults: {rate_limit: 0.3}\n      rate_limit_retry_after: 1s\n"},
		{"headers and retry-after 1s", "      faults: {rate_limit: 0.3}\n      rate_limit_retry_after: 1s\n      rate_limit_headers: true\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, base+tc.sim, 200, 40)
				_, elapsed := s.runOK()
				st := s.stats("s1/m-small")
				t.Logf("200 prompts in %s without random 429s, %s with %d of %d requests answered 429 at random (bound %s)",
					without, elapsed, st.RandomRateLimited, st.Requests, 3*without)
				if st.RandomRateLimited < 40 {
					t.Fatalf("only %d random 429s: the fault did not fire", st.RandomRateLimited)
				}
				if elapsed > 3*without {
					t.Errorf("took %s, want at most 3× the %s without random 429s", elapsed, without)
				}
			})
		})
	}
}

// The fault storm: the only provider fails 25% of requests (5xx, resets, malformed bodies, hangs
// that end at the 2 s timeout) at 32 in flight, under breaker failure_threshold 5, open_for 10s.
// Failures bunch together, but a breaker on the failure rate never parks a lane that answers 75%:
// about 3 s of work ends in under 15 s with every prompt ok.
func TestPaceFaultStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, `
defaults:
  concurrency: 32
  timeout: 2s
  breaker: {failure_threshold: 5, open_for: 10s}
providers:
  - name: flaky
    type: sim
    models:
      - {name: f-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim:
      latency: 100ms
      jitter: 0.2
      seed: 3
      faults: {server_error: 0.08, unavailable: 0.04, reset: 0.05, malformed: 0.04, hang: 0.04}
`, 1000, 40)
		_, elapsed := s.runOK()
		st := s.stats("flaky/f-small")
		t.Logf("1000 prompts ok in %s (virtual) through %d requests, %d faults (%.0f%%)",
			elapsed, st.Requests, st.Faults, 100*float64(st.Faults)/float64(st.Requests))
		if float64(st.Faults) < 0.2*float64(st.Requests) {
			t.Fatalf("only %d faults in %d requests", st.Faults, st.Requests)
		}
		if elapsed > 15*time.Second {
			t.Errorf("took %s, want under 15 s", elapsed)
		}
	})
}
