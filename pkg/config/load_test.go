package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseErrorsNameFileLineAndField(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error, in order
	}{
		{"empty", "  \n", []string{"p.yaml: the file is empty"}},
		{"unknown field", "providers:\n  - name: a\n    type: openai\n    bogus: 1\n", []string{`p.yaml:4:5: unknown field "bogus"`}},
		{"bad duration", "defaults:\n  timeout: 3x\nproviders: []\n", []string{`p.yaml:2:12: bad duration "3x"`}},
		{"negative and duplicates", `providers:
  - name: a
    type: openai
    base_url: http://x
    models:
      - name: m
        rpm: -3
      - name: m
        category: huge
  - name: a
    type: sim
    models: [{name: x}]
`, []string{
			"p.yaml:7:14: rpm must not be negative (got -3)",
			`p.yaml:8:15: provider "a": duplicate model "m"`,
			`p.yaml:9:19: model "m": unknown category "huge"`,
			`p.yaml:10:11: duplicate provider name "a"`,
		}},
		{"sim faults", "providers:\n  - name: s\n    type: sim\n    models: [{name: x}]\n    sim: {faults: {hang: 2}, limits: {y: {rpm: 1}}}\n",
			[]string{"p.yaml:5:26: hang is a probability between 0 and 1", `sim limits name model "y"`}},
		{"wrong type", "providers:\n  - name: a\n    type: sim\n    enabled: maybe\n    models: [{name: m}]\n",
			[]string{`p.yaml:4:14: enabled: "maybe" is not true or false`}},
		{"not a number", "providers:\n  - {name: a, type: sim, models: [{name: m, rpm: lots}]}\n",
			[]string{`p.yaml:2:50: rpm: "lots" is not a whole number`}},
		{"no type", "providers:\n  - name: a\n    models: [{name: x}]\n", []string{`p.yaml:2:9: provider "a" has no type`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order)", msg, w)
				}
				at += i + len(w)
			}
		})
	}
}

func TestLoadAppliesDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	yaml := "defaults:\n  retry: {base_delay: 250ms}\nproviders:\n  - name: s\n    type: sim\n    retry: {max_attempts: 2}\n    breaker: {failure_threshold: 9}\n    models: [{name: x, rpm: 10}]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Providers[0]
	if cfg.Defaults.Concurrency != 64 || cfg.TimeoutFor(p) != 120*time.Second || cfg.Defaults.Breaker.FailureThreshold != 5 {
		t.Errorf("defaults not applied: %+v", cfg.Defaults)
	}
	if r := cfg.RetryFor(p); r.MaxAttempts != 2 || r.BaseDelay.D() != 250*time.Millisecond || r.MaxDelay.D() != time.Minute || r.Jitter != 0.25 {
		t.Errorf("provider retry override not completed from the file's defaults: %+v", r)
	}
	if b := cfg.BreakerFor(p); b.FailureThreshold != 9 || b.OpenFor.D() != 30*time.Second {
		t.Errorf("provider breaker override not completed from defaults: %+v", b)
	}
	if p.Sim == nil || p.Sim.API != TypeOpenAI || !p.Available(func(string) string { return "" }) {
		t.Errorf("a sim provider needs no key and speaks openai by default: %+v", p.Sim)
	}
	if _, m := cfg.Lookup("s", "x"); m == nil || m.RPM != 10 {
		t.Errorf("lookup: %+v", m)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file must be named: %v", err)
	}
}

func TestProviderAvailability(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(`providers:
  - {name: keyed, type: openai, base_url: http://x, api_key_env: K, models: [{name: m}]}
  - {name: local, type: openai, base_url: http://localhost:11434/v1, api_key_env: "", models: [{name: m}]}
  - {name: off, type: openai, base_url: http://x, api_key_env: K, enabled: false, models: [{name: m}]}
  - {name: on, type: sim, enabled: true, models: [{name: m}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []map[string]string{{}, {"K": "sk-set"}} {
		getenv := func(k string) string { return env[k] }
		want := map[string]string{"keyed": "provider key not set (K)", "local": "", "on": "",
			"off": "disabled in the config (enabled: false)"}
		if env["K"] != "" {
			want["keyed"] = ""
		}
		for _, p := range cfg.Providers {
			if got := p.Unavailable(getenv); got != want[p.Name] || p.Available(getenv) != (got == "") {
				t.Errorf("K=%q: %s: unavailable %q, want %q", env["K"], p.Name, got, want[p.Name])
			}
		}
	}
	if _, err := Parse("p.yaml", []byte("providers:\n  - {name: a, type: sim, enabled: maybe, models: [{name: m}]}\n")); err == nil ||
		!strings.Contains(err.Error(), "p.yaml:2") {
		t.Errorf("enabled: maybe must be an error naming the line, got %v", err)
	}
}
