package batch_test

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/internal/testkit"
	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/progress"
)

// When nothing completes, the progress bar says why: the lane's rate limit and until when, the
// failures it retries, its open breaker and until when. The display writes to a buffer under test.
func TestDisplaySaysWhyNothingCompletes(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		refused    bool
		want       string
	}{
		{"rate limit", `
defaults: {concurrency: 4, timeout: 10s}
providers:
  - name: only
    type: sim
    models:
      - {name: o-small, category: small, rpm: 2, input_per_mtok: 1, output_per_mtok: 4}
    sim: {latency: 100ms}
`, false, `waiting for a rate limit of only/o-small: \d+ queued until \d\d:\d\d:\d\d`},
		{"network errors", `
defaults: {concurrency: 4, timeout: 10s, retry: {max_attempts: 5, base_delay: 3s, max_delay: 8s}, breaker: {failure_threshold: 1000, open_for: 5s}}
providers:
  - name: only
    type: sim
    models:
      - {name: o-small, category: small, input_per_mtok: 1, output_per_mtok: 4}
`, true, `retrying after network errors on only/o-small`},
		{"breaker open", `
defaults: {concurrency: 4, timeout: 10s, retry: {max_attempts: 5, base_delay: 1s, max_delay: 8s}, breaker: {failure_threshold: 2, open_for: 20s}}
providers:
  - name: only
    type: sim
    models:
      - {name: o-small, category: small, input_per_mtok: 1, output_per_mtok: 4}
`, true, `breaker open on only/o-small until \d\d:\d\d:\d\d`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, tc.yaml, 6)
				o := r.options()
				if tc.refused {
					o.Transport = func(*config.Provider) http.RoundTripper { return refused{} }
				}
				var screen testkit.SyncBuffer
				o.Progress = func(n, done int) *progress.Display {
					return progress.New(&screen, n, progress.Options{Enabled: true, Now: time.Now, Done: done, Width: 200})
				}
				if _, err := batch.Run(context.Background(), o); err != nil {
					t.Fatal(err)
				}
				if !regexp.MustCompile(tc.want).MatchString(screen.String()) {
					t.Errorf("the bar never said %q:\n%q", tc.want, screen.String())
				}
			})
		})
	}
}
