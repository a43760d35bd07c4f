package cmd

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// The secrets tests of issue 17 row 3: a key written into a base_url (as a query value or as
// userinfo), or pasted into api_key_env, never reaches stdout, stderr or the result file of run,
// models, estimate or select; and a key that cannot be a header value stops the run before anything
// is sent, naming the variable only.

const (
	queryKey    = "sk-query-0123456789abcdef"
	userinfoKey = "sk-userinfo-0123456789abcdef"
	pastedKey   = "sk-pasted-0123456789abcdef"
)

// secretsConfig has a working simulator provider and three that leak a key if printed carelessly.
var secretsConfig = `
defaults: {concurrency: 8, timeout: 10s}
providers:
  - name: s1
    type: sim
    models: [{name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}]
  - name: gw
    type: openai
    base_url: https://gateway.example/v1?api-version=2024&key=` + queryKey + `
    api_key_env: GW_KEY
    models: [{name: gw-small, category: small, input_per_mtok: 0.2, output_per_mtok: 0.8}]
  - name: proxy
    type: anthropic
    base_url: https://me:` + userinfoKey + `@proxy.example
    api_key_env: PROXY_KEY
    models: [{name: claude-haiku-x, category: small, input_per_mtok: 0.3, output_per_mtok: 1}]
  - name: pasted
    type: openai
    base_url: https://api.example/v1
    api_key_env: ` + pastedKey + `
    models: [{name: p-small, category: small, input_per_mtok: 0.05, output_per_mtok: 0.1}]
`

func TestKeysInTheConfigAreNeverPrinted(t *testing.T) {
	// As written, run refuses the base_url with a key (exit 2); with those providers disabled it runs
	// on the simulator and writes result lines, warnings and a summary.
	disabled := strings.ReplaceAll(secretsConfig, "    type: openai\n    base_url: https://gateway", "    type: openai\n    enabled: false\n    base_url: https://gateway")
	disabled = strings.ReplaceAll(disabled, "    type: anthropic\n", "    type: anthropic\n    enabled: false\n")
	for _, tc := range []struct {
		name    string
		config  string
		runExit int
	}{{"as written", secretsConfig, ExitUsage}, {"leaky providers disabled", disabled, ExitOK}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { checkKeysNeverPrinted(t, tc.config, tc.runExit) })
		})
	}
}

func checkKeysNeverPrinted(t *testing.T, config string, runExit int) {
	s := newSimRun(t, config, 5, 40)
	env := map[string]string{"GW_KEY": "sk-env-gw", "PROXY_KEY": "sk-env-proxy"}
	f := s.factory(nil)
	f.Getenv = func(k string) string { return env[k] }
	var all bytes.Buffer // every stream of every command
	for _, args := range [][]string{
		{"models", "-c", s.cfgPath},
		{"models", "-c", s.cfgPath, "--json"},
		{"estimate", s.input, "-c", s.cfgPath},
		{"estimate", s.input, "-c", s.cfgPath, "--json"},
		{"select", s.input, "-c", s.cfgPath, "--json", "--explain"},
		{"run", s.input, "-c", s.cfgPath, "-o", s.output},
		{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--log-format", "json", "-v", "--fresh"},
	} {
		s.stdout.Reset()
		s.stderr.Reset()
		code := Execute(context.Background(), f, args)
		out := s.stdout.String() + s.stderr.String()
		all.WriteString(out)
		if want := map[bool]int{true: runExit, false: ExitOK}[args[0] == "run"]; code != want {
			t.Errorf("%v: exit %d, want %d:\n%s", args, code, want, out)
		}
	}
	if runExit == ExitOK {
		s.allOK()
		all.WriteString(readOutput(t, s.output))
	} else if _, err := os.Stat(s.output); err == nil {
		t.Error("a refused run created an output")
	}
	for _, key := range []string{queryKey, userinfoKey, pastedKey, "sk-env-gw", "sk-env-proxy"} {
		if strings.Contains(all.String(), key) {
			t.Errorf("%s was printed", key)
		}
	}
	// The user is told what to fix, with the URL masked rather than omitted.
	for _, want := range []string{
		"provider gw: base_url https://gateway.example/v1?api-version=2024&key=REDACTED carries a credential",
		"provider proxy: base_url https://REDACTED@proxy.example carries a credential",
		"provider pasted: api_key_env is not a variable name",
		"REDACTED (api_key_env does not look like a variable name",
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no %q in the output of the commands", want)
		}
	}
}

func TestKeyThatCannotBeAHeaderIsAConfigError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cfgYAML = `
defaults: {concurrency: 4, timeout: 10s}
providers:
  - name: s1
    type: openai
    base_url: http://sim.invalid/sim/s1/v1
    api_key_env: S1_KEY
    models: [{name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}]
`
		s := newSimRun(t, cfgYAML, 5, 40)
		srv := sim.New(s.cfg, sim.Options{Now: time.Now})
		for _, key := range []string{"sk-newline-0123\n", "sk-ctrl\x01-0123", "sk-cr-0123\r\n"} {
			f := s.factory(nil)
			f.Getenv = func(k string) string {
				if k == "S1_KEY" {
					return key
				}
				return ""
			}
			f.Transport = func(*config.Provider) http.RoundTripper { return srv.Transport() }
			s.stdout.Reset()
			s.stderr.Reset()
			code := Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", s.output})
			msg := s.stderr.String()
			if code != ExitUsage || !strings.Contains(msg, "S1_KEY") || !strings.Contains(msg, "cannot be sent in an HTTP header") {
				t.Errorf("key %q: exit %d, stderr %q; want 2 naming S1_KEY", key, code, msg)
			}
			if strings.Contains(msg+s.stdout.String(), strings.TrimSpace(key)[:8]) {
				t.Errorf("key %q: its value was printed: %q", key, msg)
			}
			s.stdout.Reset()
			if code := Execute(context.Background(), f, []string{"models", "-c", s.cfgPath}); code != ExitOK ||
				!strings.Contains(s.stdout.String(), "S1_KEY UNUSABLE: has a control character") || strings.Contains(s.stdout.String(), strings.TrimSpace(key)[:8]) {
				t.Errorf("key %q: models exit %d:\n%s", key, code, s.stdout.String())
			}
		}
		if st := srv.Stats()["s1/m-small"]; st.Requests != 0 {
			t.Errorf("%d requests sent with a broken key", st.Requests)
		}
		if _, err := os.Stat(s.output); err == nil {
			t.Errorf("an output was created: %s", filepath.Base(s.output))
		}
	})
}

// TestLogsMaskURLCredentials: whatever the engine logs (a message, a string, an error quoting the
// URL it called) reaches stderr with the URL's credentials masked, in both log formats.
func TestLogsMaskURLCredentials(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		logger, err := newLogger(&buf, format, true, false, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		callErr := &url.Error{Op: "Post", URL: "https://gw.example/v1/chat/completions?key=" + queryKey, Err: errors.New("connection refused")}
		logger.Warn("retrying https://me:"+userinfoKey+"@proxy.example", "error", callErr, "base_url", "https://gw.example/v1?token="+queryKey)
		out := buf.String()
		if strings.Contains(out, queryKey) || strings.Contains(out, userinfoKey) || strings.Count(out, "REDACTED") != 3 {
			t.Errorf("%s log: %s", format, out)
		}
	}
}
