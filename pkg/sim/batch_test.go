package sim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/sim"
)

// batchServer serves one provider per dialect over real HTTP (no virtual time needed: turnaround 0
// ends a batch at once).
func batchServer(t *testing.T, simBatch string) *httptest.Server {
	t.Helper()
	cfg := mustConfig(t, `providers:
  - {name: oa, type: sim, sim: {api: openai, batch: `+simBatch+`}, models: [{name: gpt, max_output_tokens: 100}]}
  - {name: an, type: sim, sim: {api: anthropic, batch: `+simBatch+`}, models: [{name: claude, max_output_tokens: 100}]}
  - {name: ge, type: sim, sim: {api: gemini, batch: `+simBatch+`}, models: [{name: gem, max_output_tokens: 100}]}
`)
	ts := httptest.NewServer(sim.New(cfg, sim.Options{}))
	t.Cleanup(ts.Close)
	return ts
}

func call(t *testing.T, method, url, ctype string, body io.Reader) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func upload(t *testing.T, base, purpose, content string) (int, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("purpose", purpose)
	fw, _ := mw.CreateFormFile("file", "in.jsonl")
	_, _ = fw.Write([]byte(content))
	_ = mw.Close()
	st, m, _ := call(t, http.MethodPost, base+"/v1/files", mw.FormDataContentType(), &buf)
	return st, m
}

func TestOpenAIBatchValidation(t *testing.T) {
	ts := batchServer(t, "{max_requests: 2}")
	if st, _ := upload(t, ts.URL, "fine-tune", "{}\n"); st != http.StatusBadRequest {
		t.Errorf("purpose fine-tune: %d", st)
	}
	good := `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt","messages":[{"role":"user","content":"hi"}]}}` + "\n"
	tooBig := `{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}}` + "\n"
	unknown := `{"custom_id":"c","method":"POST","url":"/v1/chat/completions","body":{"model":"nope","messages":[{"role":"user","content":"hi"}]}}` + "\n"
	create := func(file string) map[string]any {
		_, f := upload(t, ts.URL, "batch", file)
		st, b, raw := call(t, http.MethodPost, ts.URL+"/v1/batches", "application/json",
			strings.NewReader(`{"input_file_id":"`+f["id"].(string)+`","endpoint":"/v1/chat/completions","completion_window":"24h"}`))
		if st != http.StatusOK {
			t.Fatalf("create: %d %s", st, raw)
		}
		return b
	}
	// A malformed line fails the whole batch at validation, as the real API does.
	if b := create(good + "not json\n"); b["status"] != "failed" || !strings.Contains(mustMarshal(b["errors"]), "line 2") {
		t.Errorf("malformed line: %v", b)
	}
	// Over max_requests: failed with batch_too_large.
	if b := create(good + good + good); b["status"] != "failed" || !strings.Contains(mustMarshal(b["errors"]), "batch_too_large") {
		t.Errorf("3 lines over a cap of 2: %v", b)
	}
	// Per-line problems (max_tokens above the model's, unknown model) are line errors in the error file.
	b := create(tooBig + unknown)
	id := b["id"].(string)
	st, got, _ := call(t, http.MethodGet, ts.URL+"/v1/batches/"+id, "", nil)
	if st != 200 || got["status"] != "completed" || got["output_file_id"] != nil {
		t.Fatalf("batch: %v", got)
	}
	_, _, errFile := call(t, http.MethodGet, ts.URL+"/v1/files/"+got["error_file_id"].(string)+"/content", "", nil)
	if !strings.Contains(errFile, `"custom_id":"b"`) || !strings.Contains(errFile, "max_tokens is too large") ||
		!strings.Contains(errFile, `"custom_id":"c"`) || !strings.Contains(errFile, "model_not_found") || strings.Count(errFile, "\n") != 2 {
		t.Errorf("error file:\n%s", errFile)
	}
	if st, _, _ := call(t, http.MethodGet, ts.URL+"/v1/batches/batch_nope", "", nil); st != http.StatusNotFound {
		t.Errorf("unknown batch: %d", st)
	}
	if st, _, _ := call(t, http.MethodDelete, ts.URL+"/v1/batches/"+id, "", nil); st != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", st)
	}
}

func TestAnthropicAndGeminiBatchesOverHTTP(t *testing.T) {
	ts := batchServer(t, "{}")
	st, b, raw := call(t, http.MethodPost, ts.URL+"/v1/messages/batches", "application/json", strings.NewReader(
		`{"requests":[{"custom_id":"x","params":{"model":"claude","max_tokens":20,"messages":[{"role":"user","content":"Hi"}]}},`+
			`{"custom_id":"y","params":{"model":"claude","messages":[{"role":"user","content":"Hi"}]}}]}`))
	if st != 200 || b["type"] != "message_batch" {
		t.Fatalf("anthropic create: %d %s", st, raw)
	}
	_, b, _ = call(t, http.MethodGet, ts.URL+"/v1/messages/batches/"+b["id"].(string), "", nil)
	if b["processing_status"] != "ended" || !strings.HasPrefix(b["results_url"].(string), ts.URL) {
		t.Fatalf("anthropic batch: %v", b)
	}
	_, _, results := call(t, http.MethodGet, b["results_url"].(string), "", nil)
	want, _, _ := sim.Reply([]string{"Hi"}, 20)
	if !strings.Contains(results, `"custom_id":"x","result":{"message":`) || !strings.Contains(results, want) ||
		!strings.Contains(results, `"type":"errored"`) || !strings.Contains(results, "max_tokens: Field required") {
		t.Errorf("anthropic results:\n%s", results)
	}

	st, op, raw := call(t, http.MethodPost, ts.URL+"/v1beta/models/gem:batchGenerateContent", "application/json", strings.NewReader(
		`{"batch":{"displayName":"d","inputConfig":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"Hi"}]}],"generationConfig":{"maxOutputTokens":20}},"metadata":{"key":"k"}}]}}}}`))
	if st != 200 || !strings.HasPrefix(op["name"].(string), "batches/") {
		t.Fatalf("gemini create: %d %s", st, raw)
	}
	_, op, raw = call(t, http.MethodGet, ts.URL+"/v1beta/"+op["name"].(string), "", nil)
	if op["done"] != true || !strings.Contains(raw, "BATCH_STATE_SUCCEEDED") || !strings.Contains(raw, want) || !strings.Contains(raw, `"key":"k"`) {
		t.Errorf("gemini operation: %s", raw)
	}
	_, list, _ := call(t, http.MethodGet, ts.URL+"/v1beta/batches", "", nil)
	if ops, _ := list["operations"].([]any); len(ops) != 1 {
		t.Errorf("gemini list: %v", list)
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
