package cmd

import (
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
		code, elapsed := s.run()
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
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
