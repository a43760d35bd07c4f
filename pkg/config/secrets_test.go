package config

import (
	"strings"
	"testing"
)

const secretsYAML = `
providers:
  - name: q
    type: openai
    base_url: https://gw.example/v1?key=sk-query-123
    api_key_env: Q_KEY
    models: [{name: m}]
  - name: u
    type: anthropic
    base_url: https://me:sk-user-123@proxy.example
    api_key_env: U_KEY
    models: [{name: m}]
  - name: pasted
    type: openai
    base_url: https://api.example/v1
    api_key_env: sk-pasted-123
    models: [{name: m}]
  - name: ok
    type: openai
    base_url: https://api.example/v1
    api_key_env: OK_KEY
    models: [{name: m}]
`

func TestWarningsNameTheProviderNotTheSecret(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(secretsYAML))
	if err != nil {
		t.Fatal(err)
	}
	ws := cfg.Warnings()
	if len(ws) != 3 {
		t.Fatalf("warnings %q, want one each for q, u and pasted", ws)
	}
	all := strings.Join(ws, "\n")
	for _, want := range []string{"provider q: base_url https://gw.example/v1?key=REDACTED", "provider u: base_url https://REDACTED@proxy.example", "provider pasted: api_key_env is not a variable name"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "sk-") {
		t.Errorf("a secret in the warnings:\n%s", all)
	}
	if got := cfg.Providers[2].Unavailable(func(string) string { return "" }); strings.Contains(got, "sk-pasted") {
		t.Errorf("Unavailable printed the pasted key: %q", got)
	}
}

func TestCheckKeysRefusesKeysThatCannotBeHeaders(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(secretsYAML))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"Q_KEY": "sk-good-123", "U_KEY": "sk-good\ttab", "OK_KEY": "sk-fine"}
	getenv := func(k string) string { return env[k] }
	if err := cfg.CheckKeys(getenv); err != nil {
		t.Fatalf("valid keys: %v", err)
	}
	env["Q_KEY"] = "sk-bad-123\n"
	env["OK_KEY"] = "sk-\x7fbad"
	err = cfg.CheckKeys(getenv)
	if err == nil {
		t.Fatal("keys with control characters accepted")
	}
	msg := err.Error()
	for _, want := range []string{"provider q: the key in Q_KEY has a control character (0x0a) at its end", "provider ok: the key in OK_KEY has a control character (0x7f) at byte 4 of 7"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "sk-bad") || strings.Contains(msg, "U_KEY") {
		t.Errorf("error shows a key or a good provider:\n%s", msg)
	}
}
