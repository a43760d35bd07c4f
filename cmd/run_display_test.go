package cmd

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/llmbatch/llmbatch/internal/testkit"
)

// A cheap provider that refuses the key and a good one: the cheap one is disabled mid-run with a
// warning while the bar is drawn.
const disabledMidRunConfig = `
defaults: {concurrency: 8, timeout: 30s}
providers:
  - name: bad
    type: sim
    models:
      - {name: m-bad, category: small, input_per_mtok: 0.01, output_per_mtok: 0.01}
    sim: {latency: 50ms, faults: {auth: 1}}
  - name: good
    type: sim
    models:
      - {name: m-good, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4, rpm: 600}
    sim: {latency: 50ms}
`

// With the bar drawn (--progress always), the run's warnings land on lines of their own, whole, and
// once the run ends no trace of the bar is left on the screen.
func TestRunLogsNeverLandInsideTheBar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, disabledMidRunConfig, 200, 40)
		code := Execute(context.Background(), s.factory(nil), []string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--progress", "always"})
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		out := s.stderr.String()
		if !strings.Contains(out, "(0/200)") {
			t.Fatalf("the bar was never drawn:\n%q", out)
		}
		warn := regexp.MustCompile(`^time=\S+ level=WARN msg="provider disabled for the rest of the run" provider=bad`)
		warned := 0
		for _, l := range testkit.Screen(out) {
			if warn.MatchString(l) {
				warned++
			}
			if strings.Contains(l, "█") || strings.Contains(l, "/200)") {
				t.Errorf("a trace of the bar is left on the screen: %q", l)
			}
			if strings.Contains(l, "level=") && !strings.HasPrefix(l, "time=") {
				t.Errorf("a log line does not start its own line: %q", l)
			}
		}
		if warned != 1 {
			t.Errorf("the warning shows %d times on the screen, want once:\n%s", warned, strings.Join(testkit.Screen(out), "\n"))
		}
	})
}
