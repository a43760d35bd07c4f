package request

import (
	"strings"
	"testing"
)

// hashesOf reads lines (one request each) and returns their hashes, failing on any error.
func hashesOf(t *testing.T, lines ...string) []string {
	t.Helper()
	reqs, errs := readAll(t, writeInput(t, strings.Join(lines, "\n")))
	if len(errs) != 0 || len(reqs) != len(lines) {
		t.Fatalf("got %d requests, errors %v", len(reqs), errs)
	}
	hashes := make([]string, len(reqs))
	for i, r := range reqs {
		hashes[i] = r.Hash
	}
	return hashes
}

func TestHashSameAcrossShapes(t *testing.T) {
	h := hashesOf(t,
		`{"custom_id":"x1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Sys"},{"role":"user","content":"Q?"}],"max_completion_tokens":50,"temperature":0.5,"top_p":1,"stop":["END"],"seed":7,"tool_choice":{"type":"function","function":{"name":"f"}},"stream":false,"n":1,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}]}}`,
		`{"id":"x2","messages":[{"role":"system","content":"Sys"},{"role":"user","content":"Q?"}],"model":"gpt-4o-mini","max_tokens":50,"temperature":0.50,"top_p":1.0,"stop":"END","tool_choice":{"function":{"name":"f"},"type":"function"},"seed":7,"tools":[{"function":{"parameters":{"properties":{},"type":"object"},"name":"f"},"type":"function"}]}`,
		`{"id":"x3","prompt":"Q?","system":"Sys","model":"gpt-4o-mini","max_tokens":50,"temperature":5e-1,"top_p":1,"stop":["END"],"seed":7,"tool_choice":{"type":"function","function":{"name":"f"}},"tools":[ {"type":"function", "function":{"name":"f","parameters":{"type":"object","properties":{}}}} ],"category":"large","metadata":{"who":"me"}}`,
	)
	if h[0] != h[1] || h[1] != h[2] {
		t.Errorf("the same request in three shapes hashed differently:\n%s", strings.Join(h, "\n"))
	}
	for _, x := range h {
		if len(x) != 64 || strings.Trim(x, "0123456789abcdef") != "" {
			t.Errorf("hash %q is not 64 hex digits", x)
		}
	}
}

func TestHashChangesWithContent(t *testing.T) {
	base := `{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":20}`
	variants := []string{
		`{"id":"a","prompt":"Translate: hello!","system":"You translate.","max_tokens":20}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate!","max_tokens":20}`,
		`{"id":"a","prompt":"Translate: hello","max_tokens":20}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":21}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":20,"model":"gpt-4o"}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":20,"temperature":0}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":20,"stop":"\n"}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":20,"response_format":{"type":"json_object"}}`,
		`{"id":"a","messages":[{"role":"developer","content":"You translate."},{"role":"user","content":"Translate: hello"}],"max_tokens":20}`,
		`{"id":"a","messages":[{"role":"system","content":"You translate."},{"role":"user","content":"Translate: hello","name":"bob"}],"max_tokens":20}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":20,"seed":1}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":20,"seed":2}`,
		`{"id":"a","prompt":"Translate: hello","system":"You translate.","max_tokens":20,"user":"u1"}`,
	}
	hashes := hashesOf(t, append([]string{base}, variants...)...)
	seen := map[string]int{}
	for i, h := range hashes {
		if j, dup := seen[h]; dup {
			t.Errorf("line %d hashes like line %d", i+1, j+1)
		}
		seen[h] = i
	}
}

func TestHashIgnoresIDCategoryAndMetadata(t *testing.T) {
	h := hashesOf(t,
		`{"id":"a","prompt":"p"}`,
		`{"id":"b","prompt":"p","category":"reasoning","metadata":{"row":7}}`,
		`{"prompt":"p"}`,
	)
	if h[0] != h[1] || h[1] != h[2] {
		t.Errorf("id, category or metadata changed the hash: %v", h)
	}
}

// The canonical form is what resumed runs compare; pin it so a change is deliberate.
func TestCanonicalForm(t *testing.T) {
	reqs, errs := readAll(t, writeInput(t, `{"id":"a","messages":[{"role":"system","content":"Use <b> & \"quotes\""},`+
		`{"role":"user","content":[{"text":"hi","type":"text"}]}],"max_tokens":10,"temperature":0.7,`+
		`"response_format":{"type":"json_schema","json_schema":{"strict":true,"name":"x"}},"metadata":{"m":1}}`))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := `{"v":1,"messages":[{"role":"system","content":"Use <b> & \"quotes\""},{"role":"user","content":[{"text":"hi","type":"text"}]}],` +
		`"max_tokens":10,"temperature":0.7,"response_format":{"json_schema":{"name":"x","strict":true},"type":"json_schema"}}`
	if got := string(reqs[0].Canonical()); got != want {
		t.Errorf("Canonical() =\n%s\nwant\n%s", got, want)
	}
}

func TestCanonicalOfHandBuiltRequest(t *testing.T) {
	// Requests built in code (not read) may hold raw JSON that does not parse; Canonical must not panic
	// and must still tell them apart.
	a := &Request{Messages: []Message{{Role: "user", Content: Content{Parts: []Part{{Type: "text", Text: "x"}}}}}, Tools: []byte("{bad")}
	b := &Request{Messages: []Message{{Role: "user", Content: Content{Parts: []Part{{Type: "text", Text: "x"}}}}}, Tools: []byte("{worse")}
	if string(a.Canonical()) == string(b.Canonical()) {
		t.Errorf("different raw tools gave the same canonical form %s", a.Canonical())
	}
	if !strings.Contains(string(a.Canonical()), `"content":[{"text":"x","type":"text"}]`) {
		t.Errorf("Canonical() = %s, want the part without Raw encoded from Type and Text", a.Canonical())
	}
}
