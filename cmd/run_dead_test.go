package cmd

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestRunDeadProviderExitsOne (issue 17): a provider that answers 500 to everything, and no other
// lane: the run ends with exit 1 and one error line per prompt naming the provider, within
// config.DeadOpens breaker periods (virtual time), instead of probing every 30 s forever.
func TestRunDeadProviderExitsOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, `
providers:
  - name: down
    type: sim
    models:
      - {name: d-small, category: small, input_per_mtok: 1, output_per_mtok: 4}
    sim: {latency: 100ms, faults: {server_error: 1}}
`, 50, 40)
		code, elapsed := s.run()
		if code != ExitPartial {
			t.Fatalf("exit %d, want %d: %s", code, ExitPartial, s.stderr.String())
		}
		if elapsed > 2*time.Minute {
			t.Errorf("took %s", elapsed)
		}
		for id, r := range s.byID() {
			if r.Error == nil || !strings.Contains(r.Error.Message, "provider down unusable") {
				t.Fatalf("%s: %+v", id, r)
			}
		}
		if !strings.Contains(s.stderr.String(), "50 of 50 prompts ended in error") {
			t.Errorf("stderr: %s", s.stderr.String())
		}
	})
}
