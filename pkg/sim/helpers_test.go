package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

var apis = []string{"openai", "anthropic", "gemini"}

// mustConfig parses a providers.yaml text through the real loader.
func mustConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// oneModel is a config with one sim provider "p" serving model "m" with the given model fields and
// sim section (both YAML fragments, already indented for their place).
func oneModel(t testing.TB, modelFields, simSection string) *config.Config {
	return mustConfig(t, fmt.Sprintf(`
providers:
  - name: p
    type: sim
    models:
      - name: m
%s
    sim:
      seed: 7
%s
`, modelFields, simSection))
}

// reply is a response reduced to what the tests check, whatever the API.
type reply struct {
	status  int
	header  http.Header
	body    []byte
	text    string
	in, out int
	finish  string // normalised: stop | length
	errType string // OpenAI error.type, Anthropic error.type, Gemini error.status
	errCode string // OpenAI error.code
	errMsg  string
	retry   string // Gemini RetryInfo.retryDelay
}

// buildRequest builds a request in the wire format of api for model with texts (the first is the
// system prompt) and maxTokens (0 = absent).
func buildRequest(t testing.TB, ctx context.Context, api, base, model string, texts []string, maxTokens int) *http.Request {
	t.Helper()
	var url string
	var body any
	switch api {
	case "openai":
		url = base + "/v1/chat/completions"
		msgs := []map[string]any{{"role": "system", "content": texts[0]}}
		for i, tx := range texts[1:] {
			role := "user"
			if i%2 == 1 {
				role = "assistant"
			}
			msgs = append(msgs, map[string]any{"role": role, "content": tx})
		}
		b := map[string]any{"model": model, "messages": msgs}
		if maxTokens > 0 {
			b["max_tokens"] = maxTokens
		}
		body = b
	case "anthropic":
		url = base + "/v1/messages"
		var msgs []map[string]any
		for i, tx := range texts[1:] {
			role := "user"
			if i%2 == 1 {
				role = "assistant"
			}
			msgs = append(msgs, map[string]any{"role": role, "content": []map[string]any{{"type": "text", "text": tx}}})
		}
		mt := maxTokens
		if mt == 0 {
			mt = 4096
		}
		body = map[string]any{"model": model, "system": texts[0], "messages": msgs, "max_tokens": mt}
	case "gemini":
		url = base + "/v1beta/models/" + model + ":generateContent"
		var contents []map[string]any
		for i, tx := range texts[1:] {
			role := "user"
			if i%2 == 1 {
				role = "model"
			}
			contents = append(contents, map[string]any{"role": role, "parts": []map[string]any{{"text": tx}}})
		}
		b := map[string]any{"systemInstruction": map[string]any{"parts": []map[string]any{{"text": texts[0]}}}, "contents": contents}
		if maxTokens > 0 {
			b["generationConfig"] = map[string]any{"maxOutputTokens": maxTokens}
		}
		body = b
	default:
		t.Fatalf("unknown api %q", api)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test")
	return req
}

// send runs one request of api and decodes the reply; a transport error is returned as is.
func send(t testing.TB, ctx context.Context, c *http.Client, api, base, model string, texts []string, maxTokens int) (*reply, error) {
	t.Helper()
	resp, err := c.Do(buildRequest(t, ctx, api, base, model, texts, maxTokens))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return decode(t, api, resp.StatusCode, resp.Header, b), nil
}

func mustSend(t testing.TB, ctx context.Context, c *http.Client, api, base, model string, texts []string, maxTokens int) *reply {
	t.Helper()
	r, err := send(t, ctx, c, api, base, model, texts, maxTokens)
	if err != nil {
		t.Fatalf("%s: %v", api, err)
	}
	return r
}

func decode(t testing.TB, api string, status int, h http.Header, b []byte) *reply {
	t.Helper()
	r := &reply{status: status, header: h, body: b}
	if status == http.StatusOK && !json.Valid(b) {
		return r // malformed fault
	}
	var err error
	switch api {
	case "openai":
		var v struct {
			Choices []struct {
				Message      struct{ Content string }
				FinishReason string `json:"finish_reason"`
			}
			Usage struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
				TotalTokens      int `json:"total_tokens"`
			}
			Error *struct {
				Message, Type string
				Code          *string
			}
		}
		err = json.Unmarshal(b, &v)
		if v.Error != nil {
			r.errType, r.errMsg = v.Error.Type, v.Error.Message
			if v.Error.Code != nil {
				r.errCode = *v.Error.Code
			}
		} else if len(v.Choices) == 1 {
			r.text, r.finish = v.Choices[0].Message.Content, v.Choices[0].FinishReason
			r.in, r.out = v.Usage.PromptTokens, v.Usage.CompletionTokens
			if v.Usage.TotalTokens != r.in+r.out {
				t.Errorf("openai total_tokens %d != %d+%d", v.Usage.TotalTokens, r.in, r.out)
			}
		}
	case "anthropic":
		var v struct {
			Type    string
			Content []struct{ Type, Text string }
			Stop    string `json:"stop_reason"`
			Usage   struct {
				In  int `json:"input_tokens"`
				Out int `json:"output_tokens"`
			}
			Error *struct{ Type, Message string }
		}
		err = json.Unmarshal(b, &v)
		switch {
		case v.Type == "error" && v.Error != nil:
			r.errType, r.errMsg = v.Error.Type, v.Error.Message
		case v.Type == "message" && len(v.Content) == 1:
			r.text, r.in, r.out = v.Content[0].Text, v.Usage.In, v.Usage.Out
			r.finish = map[string]string{"end_turn": "stop", "max_tokens": "length"}[v.Stop]
		}
	case "gemini":
		var v struct {
			Candidates []struct {
				Content struct {
					Parts []struct{ Text string }
					Role  string
				}
				FinishReason string
			}
			UsageMetadata struct{ PromptTokenCount, CandidatesTokenCount, TotalTokenCount int }
			Error         *struct {
				Code    int
				Message string
				Status  string
				Details []struct {
					Type       string `json:"@type"`
					RetryDelay string `json:"retryDelay"`
				}
			}
		}
		err = json.Unmarshal(b, &v)
		if v.Error != nil {
			r.errType, r.errMsg = v.Error.Status, v.Error.Message
			if v.Error.Code != status {
				t.Errorf("gemini error.code %d != HTTP %d", v.Error.Code, status)
			}
			for _, d := range v.Error.Details {
				if d.Type == "type.googleapis.com/google.rpc.RetryInfo" {
					r.retry = d.RetryDelay
				}
			}
		} else if len(v.Candidates) == 1 && len(v.Candidates[0].Content.Parts) == 1 {
			r.text = v.Candidates[0].Content.Parts[0].Text
			r.in, r.out = v.UsageMetadata.PromptTokenCount, v.UsageMetadata.CandidatesTokenCount
			r.finish = map[string]string{"STOP": "stop", "MAX_TOKENS": "length"}[v.Candidates[0].FinishReason]
			if v.Candidates[0].Content.Role != "model" {
				t.Errorf("gemini candidate role %q", v.Candidates[0].Content.Role)
			}
		}
	}
	if err != nil {
		t.Errorf("%s: decode %d body %s: %v", api, status, b, err)
	}
	return r
}

// client is an http.Client over srv's in-process transport.
func client(srv *sim.Server) *http.Client { return &http.Client{Transport: srv.Transport()} }

const base = "http://sim.test"

func prompt(i int) []string {
	return []string{"You are terse.", fmt.Sprintf("question %d: %s", i, strings.Repeat("x", i%50))}
}
