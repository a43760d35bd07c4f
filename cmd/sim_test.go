package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// lockedBuffer is an io.Writer safe for the server goroutine and the test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func simFactory(stderr io.Writer, sigs <-chan os.Signal) *Factory {
	return &Factory{
		IO:      &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: stderr},
		Getenv:  func(string) string { return "" },
		Now:     time.Now,
		Signals: sigs,
	}
}

func TestSimServeFlags(t *testing.T) {
	var got *SimServeOptions
	f := simFactory(io.Discard, nil)
	c := NewCmdSimServe(f, func(_ context.Context, o *SimServeOptions) error { got = o; return nil })
	c.SetArgs([]string{"--addr", "127.0.0.1:0", "-c", "../testdata/sim.yaml"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	cfg, err := got.Config()
	if got.Addr != "127.0.0.1:0" || err != nil || cfg.Path != "../testdata/sim.yaml" {
		t.Fatalf("options %+v, config %v", got, err)
	}
}

func TestSimServeAnswersEachAPIAndStops(t *testing.T) {
	stderr := &lockedBuffer{}
	f := simFactory(stderr, nil)
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	opts := &SimServeOptions{IO: f.IO, Addr: "127.0.0.1:0", Ready: func(a string) { ready <- a },
		Config: func() (*config.Config, error) { return f.LoadConfig("../testdata/sim.yaml") }}
	done := make(chan error, 1)
	go func() { done <- simServeRun(ctx, opts) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	}
	root := "http://" + addr
	if out := stderr.String(); !strings.Contains(out, "listening on "+root) ||
		!strings.Contains(out, "sim-anthropic (api anthropic): base_url "+root+"/sim/sim-anthropic") {
		t.Fatalf("banner:\n%s", out)
	}

	texts := []string{"You are terse.", "Name a colour."}
	for _, tc := range []struct{ api, url, body, header string }{
		{"openai", sim.BaseURL(root, "openai") + "/chat/completions",
			`{"model":"big","max_tokens":20,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Name a colour."}]}`,
			"X-Ratelimit-Remaining-Requests"},
		{"anthropic", sim.BaseURL(root+"/sim/sim-anthropic", "anthropic") + "/v1/messages",
			`{"model":"mini","max_tokens":20,"system":"You are terse.","messages":[{"role":"user","content":"Name a colour."}]}`,
			"Anthropic-Ratelimit-Requests-Remaining"},
		{"gemini", sim.BaseURL(root, "gemini") + "/models/flash:generateContent",
			`{"systemInstruction":{"parts":[{"text":"You are terse."}]},"contents":[{"role":"user","parts":[{"text":"Name a colour."}]}],"generationConfig":{"maxOutputTokens":20}}`,
			""},
	} {
		// sim.yaml injects rare 5xx faults: a client retries those.
		var resp *http.Response
		var body []byte
		for range 5 {
			var err error
			resp, err = http.Post(tc.url, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatalf("%s: %v", tc.api, err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				break
			}
		}
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(sim.Digest(texts))) {
			t.Errorf("%s: %d %s", tc.api, resp.StatusCode, body)
		}
		if tc.header != "" && resp.Header.Get(tc.header) == "" {
			t.Errorf("%s: no %s in %v", tc.api, tc.header, resp.Header)
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s: %v", tc.api, err)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after stopping", addr)
	}
}

// End to end through Execute: a signal stops the server with exit 0; a bad config exits 2.
func TestSimServeExitCodes(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM // read once the server listens
	stderr := &lockedBuffer{}
	if code := Execute(t.Context(), simFactory(stderr, sigs), []string{"sim", "serve", "--addr", "127.0.0.1:0", "-c", "../testdata/sim.yaml"}); code != ExitOK {
		t.Fatalf("signal: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "listening on") || !strings.Contains(stderr.String(), "stopping") {
		t.Fatalf("stderr:\n%s", stderr)
	}

	bad := t.TempDir() + "/bad.yaml"
	if err := os.WriteFile(bad, []byte("providers:\n  - name: s\n    type: sim\n    models: [{name: m, rpm: -1}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nosim := t.TempDir() + "/nosim.yaml"
	if err := os.WriteFile(nosim, []byte("providers:\n  - name: o\n    type: openai\n    base_url: http://x/v1\n    models: [{name: m}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"sim", "serve", "-c", bad},
		{"sim", "serve", "-c", nosim},
		{"sim", "serve", "-c", t.TempDir() + "/missing.yaml"},
		{"sim", "serve", "--addr", "256.0.0.1:bad", "-c", "../testdata/sim.yaml"},
		{"sim", "serve", "--nope"},
	} {
		stderr := &lockedBuffer{}
		if code := Execute(t.Context(), simFactory(stderr, nil), args); code != ExitUsage || !strings.Contains(stderr.String(), "llmbatch:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
