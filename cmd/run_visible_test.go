package cmd

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
)

// stampedWriter keeps what is written and when (virtual time inside synctest) each line containing
// a watched text was first written.
type stampedWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	watch []string
	first map[string]time.Time
}

func (w *stampedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.watch {
		if _, seen := w.first[s]; !seen && bytes.Contains(p, []byte(s)) {
			w.first[s] = time.Now()
		}
	}
	return w.buf.Write(p)
}

func (w *stampedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// refusedTransport fails every request as a closed port does.
type refusedTransport struct{}

func (refusedTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

// visibleConfig: the cheap provider refuses every connection; the dearer simulated one answers.
const visibleConfig = `
defaults: {concurrency: 8, timeout: 10s, retry: {max_attempts: 4, base_delay: 500ms, max_delay: 2s}, breaker: {failure_threshold: 3, open_for: 10s}}
providers:
  - name: down
    type: openai
    base_url: https://10.1.2.3:8443/v1
    api_key_env: DOWN_KEY
    models:
      - {name: d-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}
  - name: up
    type: sim
    models:
      - {name: u-small, category: small, input_per_mtok: 1, output_per_mtok: 4}
    sim: {latency: 100ms}
`

// A provider that refuses connections is named at default verbosity within 5 s (virtual time),
// with its address and the error (never its key), once: the repeats are folded; its breaker
// opening is shown too. The run still completes on the other provider.
func TestRunShowsARefusingProviderAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, visibleConfig, 40, 40)
		const warning = "provider down not answering"
		stderr := &stampedWriter{watch: []string{warning, "breaker opened on down/d-small"}, first: map[string]time.Time{}}
		f := s.factory(nil)
		f.IO.ErrOut = stderr
		f.Getenv = func(name string) string {
			if name == "DOWN_KEY" {
				return "sk-down-key-0123456789"
			}
			return ""
		}
		f.Transport = func(p *config.Provider) http.RoundTripper {
			if p.Name == "down" {
				return refusedTransport{}
			}
			return s.srv.Transport()
		}
		start := time.Now()
		code := Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", s.output})
		out := stderr.String()
		if code != ExitOK {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		s.allOK()
		at, ok := stderr.first[warning]
		if !ok {
			t.Fatalf("no warning about the refusing provider at default verbosity:\n%s", out)
		}
		if d := at.Sub(start); d > 5*time.Second {
			t.Errorf("the warning came %s after the start, want within 5s", d)
		}
		var shown []string
		for line := range strings.SplitSeq(out, "\n") {
			if strings.Contains(line, warning) && !strings.Contains(line, "more: ") {
				shown = append(shown, line)
			}
		}
		if len(shown) != 1 {
			t.Errorf("%d warning lines for the refusing provider, want one (repeats folded):\n%s", len(shown), out)
		} else if l := shown[0]; !strings.Contains(l, "10.1.2.3:8443") || !strings.Contains(l, "connection refused") || !strings.Contains(l, "level=WARN") {
			t.Errorf("the warning lacks the address or the error: %s", l)
		}
		if _, ok := stderr.first["breaker opened on down/d-small"]; !ok {
			t.Errorf("no line says the breaker opened:\n%s", out)
		}
		if strings.Contains(out, "sk-down-key") {
			t.Errorf("stderr shows the key:\n%s", out)
		}
	})
}

// A lane failing for its first 8 s: its breaker's opening and closing are both shown.
func TestRunShowsBreakerOpenedAndClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, `
defaults: {concurrency: 4, timeout: 10s, retry: {max_attempts: 10, base_delay: 500ms, max_delay: 2s}, breaker: {failure_threshold: 3, open_for: 5s}}
providers:
  - name: flaky
    type: sim
    models:
      - {name: f-small, category: small, input_per_mtok: 1, output_per_mtok: 4}
    sim: {latency: 100ms, faults: {server_error: 1}, faults_for: 8s}
`, 10, 40)
		code := Execute(context.Background(), s.factory(nil), []string{"run", s.input, "-c", s.cfgPath, "-o", s.output})
		out := s.stderr.String()
		if code != ExitOK {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		opened := strings.Index(out, "breaker opened on flaky/f-small")
		closed := strings.Index(out, "breaker closed on flaky/f-small")
		if opened < 0 || closed < opened {
			t.Errorf("want a line saying the breaker opened, then one saying it closed:\n%s", out)
		}
	})
}
