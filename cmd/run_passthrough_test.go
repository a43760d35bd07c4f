package cmd

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"testing/synctest"
)

const passThroughConfig = `
providers:
  - name: oa
    type: sim
    models: [{name: oa-small, category: small}]
    sim: {api: openai}
  - name: an
    type: sim
    models: [{name: an-small, category: small}]
    sim: {api: anthropic}
  - name: ge
    type: sim
    models: [{name: ge-small, category: small}]
    sim: {api: gemini}
`

// OpenAI parameters llmbatch does not interpret (seed, tool_choice, …) reach the wire as written for
// OpenAI-compatible providers and translated for Anthropic and Gemini, through the whole run command;
// they are part of request_hash, so a resume sends nothing again.
func TestRunPassesThroughOpenAIParameters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, passThroughConfig, 0, 0)
		tools := `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`
		var in strings.Builder
		for _, m := range []string{"oa-small", "an-small", "ge-small"} {
			in.WriteString(`{"id":"` + m + `","model":"` + m + `","messages":[{"role":"user","content":"Label item 1 as sunny or not: Rome"}],` +
				`"max_tokens":20,"seed":7,"user":"u-42","tool_choice":{"type":"function","function":{"name":"get_weather"}},"tools":` + tools + "}\n")
		}
		if err := os.WriteFile(s.input, []byte(in.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, rec := s.runRecorded()
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, s.stderr.String())
		}
		want := map[string]string{ // provider → what its request body must hold
			"oa": `"seed":7,"tool_choice":{"type":"function","function":{"name":"get_weather"}},"user":"u-42"`,
			"an": `"tool_choice":{"type":"tool","name":"get_weather"}`,
			"ge": `"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}}`,
		}
		if len(rec.ex) != 3 {
			t.Fatalf("%d requests sent, want 3", len(rec.ex))
		}
		for _, e := range rec.ex {
			if !json.Valid(e.body) || !strings.Contains(string(e.body), want[e.provider]) {
				t.Errorf("%s body %s lacks %s", e.provider, e.body, want[e.provider])
			}
			if e.provider == "ge" && !strings.Contains(string(e.body), `"seed":7`) {
				t.Errorf("gemini body %s lacks generationConfig.seed", e.body)
			}
			if e.provider == "an" && strings.Contains(string(e.body), "seed") {
				t.Errorf("anthropic body %s carries a seed the Messages API does not accept", e.body)
			}
		}
		if code, _, rec := s.runRecorded(); code != 0 || len(rec.ex) != 0 {
			t.Errorf("resume: exit %d, %d requests sent; want 0 and none\n%s", code, len(rec.ex), s.stderr.String())
		}
	})
}
