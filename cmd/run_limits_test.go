package cmd

import (
	"fmt"
	"testing"
	"testing/synctest"
)

const rpmBoundConfig = `
defaults: {concurrency: 64, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, rpm: 300, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 200ms, jitter: 0.2}
`

func TestRunRPMBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, rpmBoundConfig, 900, 40)
		_, elapsed := s.runOK()
		st := s.stats("s1/m-small")
		got := share(len(s.prompts), elapsed, 300)
		t.Logf("rpm-bound: %d prompts in %s (virtual): %.1f%% of 300 RPM, %d 429s, at most %d in a window",
			len(s.prompts), elapsed, 100*got, st.RateLimited, st.MaxInWindow)
		if st.MaxInWindow > 300 {
			t.Errorf("the simulator admitted %d in one window, limit 300", st.MaxInWindow)
		}
		if st.RateLimited > 3 {
			t.Errorf("%d requests were answered 429", st.RateLimited)
		}
		if got < 0.95 {
			t.Errorf("achieved %.1f%% of the RPM ceiling, want >= 95%%", 100*got)
		}
	})
}

// checkLane asserts the simulator's view of one lane: never more than limit admitted in a window and
// at most maxRejected 429s.
func checkLane(t *testing.T, s *simRun, lane string, limit, maxRejected int) {
	t.Helper()
	st := s.stats(lane)
	t.Logf("%s: %d requests, %d ok, %d 429s, at most %d in a window", lane, st.Requests, st.OK, st.RateLimited, st.MaxInWindow)
	if limit > 0 && st.MaxInWindow > limit {
		t.Errorf("%s: the simulator admitted %d in one window, limit %d", lane, st.MaxInWindow, limit)
	}
	if st.RateLimited > maxRejected {
		t.Errorf("%s: %d requests were answered 429, want at most %d", lane, st.RateLimited, maxRejected)
	}
}

// Each prompt is ~100 tokens by the providers' character estimate plus max_tokens 50 at admission,
// so 30,000 TPM admit about 190 requests a minute, below the 1,000 RPM.
const tpmBoundConfig = `
defaults: {concurrency: 64, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, rpm: 1000, tpm: 30000, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 150ms, jitter: 0.2}
`

func TestRunTPMBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, tpmBoundConfig, 600, 400)
		_, elapsed := s.runOK()
		st := s.stats("s1/m-small")
		perRequest := float64(st.InputTokens)/float64(st.OK) + 50 // the simulator's admission cost
		ceiling := 30000 / perRequest
		got := share(len(s.prompts), elapsed, ceiling)
		t.Logf("tpm-bound: %d prompts in %s (virtual), %.0f tokens a request: %.1f%% of the %.0f req/min ceiling",
			len(s.prompts), elapsed, perRequest, 100*got, ceiling)
		checkLane(t, s, "s1/m-small", 0, 3)
		if got < 0.95 {
			t.Errorf("achieved %.1f%% of the TPM ceiling, want >= 95%%", 100*got)
		}
	})
}

// Three providers of one category with different limits and prices: under --prefer speed they share
// the batch by capacity, so the wall time approaches the summed ceiling (120+240+600 RPM).
const threeProvidersConfig = `
defaults: {concurrency: 64, timeout: 30s}
providers:
  - name: cheap
    type: sim
    models:
      - {name: c-small, category: small, rpm: 120, input_per_mtok: 0.05, output_per_mtok: 0.2}
    sim: {latency: 300ms, jitter: 0.2}
  - name: mid
    type: sim
    models:
      - {name: m-small, category: small, rpm: 240, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 200ms, jitter: 0.2, api: anthropic}
  - name: fast
    type: sim
    models:
      - {name: f-small, category: small, rpm: 600, input_per_mtok: 0.3, output_per_mtok: 1.2}
    sim: {latency: 100ms, jitter: 0.2, api: gemini}
`

func TestRunThreeProvidersSpeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, threeProvidersConfig, 1920, 40)
		got, elapsed := s.runOK("--prefer", "speed")
		perLane := map[string]int{}
		for _, r := range got {
			perLane[r.Provider]++
		}
		sh := share(len(s.prompts), elapsed, 960)
		t.Logf("three providers: %d prompts in %s (virtual): %.1f%% of 960 RPM; per provider %v", len(s.prompts), elapsed, 100*sh, perLane)
		checkLane(t, s, "cheap/c-small", 120, 3)
		checkLane(t, s, "mid/m-small", 240, 3)
		checkLane(t, s, "fast/f-small", 600, 3)
		if sh < 0.93 {
			t.Errorf("achieved %.1f%% of the summed ceiling, want >= 93%%", 100*sh)
		}
		// Work follows capacity: the 600-RPM lane does most, the 120-RPM lane least.
		if !(perLane["fast"] > perLane["mid"] && perLane["mid"] > perLane["cheap"]) {
			t.Errorf("work is not spread by capacity: %v", perLane)
		}
	})
}

func TestRunThreeProvidersCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, threeProvidersConfig, 300, 40)
		got, _ := s.runOK()
		for id, r := range got {
			if r.Provider != "cheap" {
				t.Fatalf("%s went to %s under --prefer cost; the cheapest lane was healthy", id, r.Provider)
			}
		}
		checkLane(t, s, "cheap/c-small", 120, 3)
	})
}

// The simulator enforces 300 RPM and says so in its headers; the config gives no limits, or claims
// four times the real ones. Either way the run must settle on the real ceiling. Until the first
// response nothing is known, so the first burst may overshoot once.
const learnedConfig = `
defaults: {concurrency: 64, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, %s input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim:
      latency: 200ms
      jitter: 0.2
      limits: {m-small: {rpm: 300}}
`

func TestRunLearnsLimitsFromHeaders(t *testing.T) { testLearnedLimits(t, "", 64) }

func TestRunOverstatedLimits(t *testing.T) { testLearnedLimits(t, "rpm: 1200,", 30) }

// testLearnedLimits runs 900 prompts with the model's configured limits set to limits and tolerates
// rejected 429s while the run learns the real ones.
func testLearnedLimits(t *testing.T, limits string, rejected int) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, fmt.Sprintf(learnedConfig, limits), 900, 40)
		_, elapsed := s.runOK()
		got := share(len(s.prompts), elapsed, 300)
		t.Logf("%d prompts in %s (virtual): %.1f%% of the real 300 RPM", len(s.prompts), elapsed, 100*got)
		checkLane(t, s, "s1/m-small", 300, rejected)
		if got < 0.90 {
			t.Errorf("achieved %.1f%% of the real ceiling, want >= 90%%", 100*got)
		}
	})
}
