package cmd

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/config"
)

type modelsOut struct {
	Config    string       `json:"config"`
	Providers []modelsJSON `json:"providers"`
}

func runModelsJSON(t *testing.T, path string, getenv func(string) string) (modelsOut, string) {
	t.Helper()
	io, out, _ := testStreams()
	if err := modelsRun(context.Background(), &ModelsOptions{IO: io, Getenv: getenv, Config: configFunc(path), JSON: true}); err != nil {
		t.Fatal(err)
	}
	var got modelsOut
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return got, out.String()
}

func TestModelsListsConfigAndKeys(t *testing.T) {
	cfg := loadFixture(t)
	got, raw := runModelsJSON(t, fixtureConfig, fixtureEnv("BIG_KEY"))
	if len(got.Providers) != len(cfg.Providers) {
		t.Fatalf("%d providers, want %d", len(got.Providers), len(cfg.Providers))
	}
	for i, p := range got.Providers {
		cp := cfg.Providers[i]
		if p.Name != cp.Name || len(p.Models) != len(cp.Models) || p.APIKeyEnv != cp.APIKeyEnv {
			t.Errorf("provider %d = %+v", i, p)
		}
		wantSet := p.Name != "big"
		if p.KeySet != wantSet || p.Available != wantSet {
			t.Errorf("%s: key_set %v available %v, want %v", p.Name, p.KeySet, p.Available, wantSet)
		}
		for j, m := range p.Models {
			cm := cp.Models[j]
			if m.Name != cm.Name || m.Category != cm.Category || m.ContextWindow != cm.ContextWindow ||
				m.InputPerMTok != cm.InputPerMTok || m.RPM != cm.RPM || m.RPD != cm.RPD || m.Free != cm.Free {
				t.Errorf("%s: %+v differs from the config %+v", p.Name, m, cm)
			}
		}
	}
	if strings.Contains(raw, "sk-secret") {
		t.Error("models printed a key")
	}

	io, out, _ := testStreams()
	if err := modelsRun(context.Background(), &ModelsOptions{IO: io, Getenv: fixtureEnv("BIG_KEY"), Config: configFunc(fixtureConfig)}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"PROVIDER", "tiny-model", "CHEAP_KEY set", "BIG_KEY NOT SET (skipped)", "free", "200,000"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "sk-secret") {
		t.Error("models printed a key")
	}
}

func TestModelsBadConfig(t *testing.T) {
	io, _, _ := testStreams()
	f := &Factory{IO: io, Getenv: fixtureEnv()}
	err := modelsRun(context.Background(), &ModelsOptions{IO: io, Getenv: f.Getenv,
		Config: func() (*config.Config, error) { return f.LoadConfig("../testdata/cmd/does-not-exist.yaml") }})
	if exitCode(t, err) != ExitUsage || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("err = %v", err)
	}
}

// TestModelsDefaultProvidersYAML loads the repository's providers.yaml: it must validate, and its
// entries must be usable as shipped.
func TestModelsDefaultProvidersYAML(t *testing.T) {
	cfg, err := config.Load("../providers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := runModelsJSON(t, "../providers.yaml", func(string) string { return "" })
	keys := map[string]string{"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY",
		"groq": "GROQ_API_KEY", "openrouter": "OPENROUTER_API_KEY", "ollama": ""} // ollama: keyless, shipped disabled
	if len(got.Providers) != len(keys) {
		t.Errorf("%d providers, want %d", len(got.Providers), len(keys))
	}
	cats := map[string]int{}
	for _, p := range got.Providers {
		want, ok := keys[p.Name]
		if !ok || p.APIKeyEnv != want {
			t.Errorf("provider %s: api_key_env %q", p.Name, p.APIKeyEnv)
		}
		wantWhy := "provider key not set (" + want + ")"
		if want == "" {
			wantWhy = "disabled in the config (enabled: false)"
		}
		if p.Available || p.Unavailable != wantWhy {
			t.Errorf("provider %s available=%v (%q) with no keys set, want unavailable: %s", p.Name, p.Available, p.Unavailable, wantWhy)
		}
		for _, m := range p.Models {
			cats[m.Category]++
			if m.ContextWindow <= 0 || m.MaxOutputTokens <= 0 || m.MaxOutputTokens > m.ContextWindow {
				t.Errorf("%s/%s: context %d, max output %d", p.Name, m.Name, m.ContextWindow, m.MaxOutputTokens)
			}
			if m.Free != (m.InputPerMTok == 0 && m.OutputPerMTok == 0) {
				t.Errorf("%s/%s: free=%v with prices %v/%v", p.Name, m.Name, m.Free, m.InputPerMTok, m.OutputPerMTok)
			}
			if p.Name == "openai" && m.Encoding != "o200k_base" {
				t.Errorf("%s/%s: encoding %q", p.Name, m.Name, m.Encoding)
			}
		}
	}
	for _, c := range []string{"tiny", "small", "large", "reasoning"} {
		if cats[c] == 0 {
			t.Errorf("no %s model in the default config", c)
		}
	}
	if cfg.Defaults.Concurrency <= 0 {
		t.Errorf("defaults.concurrency = %d", cfg.Defaults.Concurrency)
	}
}

// Every number in the models table has one format: integers in full with thousands separators,
// prices with at least two decimals, "-" for an unknown limit.
func TestModelsTableNumbersHaveOneFormat(t *testing.T) {
	io, out, _ := testStreams()
	if err := modelsRun(context.Background(), &ModelsOptions{IO: io, Getenv: func(string) string { return "" },
		Config: configFunc("../providers.yaml")}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	header := strings.Fields(strings.NewReplacer("MAX OUT", "MAX_OUT", "IN $/M", "IN_$/M", "OUT $/M", "OUT_$/M").Replace(lines[2]))
	integer := regexp.MustCompile(`^(-|[1-9]\d{0,2}(,\d{3})*)$`)
	decimal := regexp.MustCompile(`^\d+\.\d{2,}$`)
	rows := 0
	for _, l := range lines[3:] {
		cells := strings.Fields(l)
		for i, col := range header {
			switch col {
			case "CONTEXT", "MAX_OUT", "RPM", "TPM", "RPD", "TPD":
				if !integer.MatchString(cells[i]) {
					t.Errorf("%s %s = %q, want a whole number with thousands separators", cells[1], col, cells[i])
				}
			case "IN_$/M", "OUT_$/M":
				if !decimal.MatchString(cells[i]) {
					t.Errorf("%s %s = %q, want a price with at least two decimals", cells[1], col, cells[i])
				}
			}
		}
		rows++
	}
	if rows < 10 {
		t.Fatalf("only %d model rows:\n%s", rows, out)
	}
}
