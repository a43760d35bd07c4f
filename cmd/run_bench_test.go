package cmd

import (
	"context"
	"os"
	"testing"
	"time"
)

// The engine's own overhead: no limits, no latency, 64 requests in flight, every request through the
// real adapters and the in-process simulator, every result written to a file. Reports requests/s.
const unlimitedConfig = `
defaults: {concurrency: 64, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}
`

func BenchmarkRunThroughput(b *testing.B) {
	const prompts = 20000
	s := newSimRun(b, unlimitedConfig, prompts, 200)
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		os.Remove(s.output)
		start := time.Now()
		if code := Execute(context.Background(), s.factory(nil), []string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet"}); code != ExitOK {
			b.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(prompts*b.N)/elapsed.Seconds(), "req/s")
}
