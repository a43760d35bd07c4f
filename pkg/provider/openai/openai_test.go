package openai_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
	"github.com/llmbatch/llmbatch/pkg/provider/openai"
	"github.com/llmbatch/llmbatch/pkg/request"
)

const key = "sk-proj-TESTKEY-do-not-leak-0123456789"

var t0 = replay.Now()

func newClient(t testing.TB, fixture string, mod func(*provider.Options)) (*provider.Adapter, *replay.Transport) {
	o := provider.Options{Name: "openai", APIKey: key}
	if mod != nil {
		mod(&o)
	}
	return replay.Adapter(t, openai.New, "openai", fixture, o)
}

func userReq(model string) *provider.Request {
	return &provider.Request{Model: model, Messages: []request.Message{
		{Role: "system", Content: request.Content{Text: "Answer briefly."}},
		{Role: "user", Content: request.Content{Text: "What is the capital of France?"}},
	}}
}

func TestCompleteSuccess(t *testing.T) {
	c, tr := newClient(t, "success.http", nil)
	req := userReq("gpt-4o-mini")
	req.MaxTokens = 200
	req.Temperature = replay.Ptr(0.2)
	req.TopP = replay.Ptr(0.9)
	req.Stop = []string{"\n\n"}
	req.ResponseFormat = json.RawMessage(`{"type":"json_object"}`)
	req.Tools = json.RawMessage(`[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`)

	resp := replay.MustComplete(t, c, req)
	want := &provider.Response{
		Content:      "The capital of France is Paris.",
		FinishReason: "stop",
		Usage:        provider.Usage{InputTokens: 1536, OutputTokens: 8, CachedTokens: 1024},
		Model:        "gpt-4o-mini-2024-07-18",
		RequestID:    "req_5b6f0e3d4c2a41e8b97d1f0a6c3e2b19",
		Limits: provider.RateLimits{ObservedAt: t0, LimitRequests: 5000, RemainingRequests: 4999, ResetRequests: 12 * time.Millisecond,
			LimitTokens: 4000000, RemainingTokens: 3998466, ResetTokens: 23 * time.Millisecond, HasRequests: true, HasTokens: true},
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("response\n got  %+v\n want %+v", resp, want)
	}

	reqs := tr.Requests()
	if len(reqs) != 1 {
		t.Fatalf("sent %d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.URL != "https://api.openai.com/v1/chat/completions" {
		t.Errorf("sent %s %s", r.Method, r.URL)
	}
	if r.Header.Get("Authorization") != "Bearer "+key || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", r.Header)
	}
	replay.JSONEqual(t, r.Body, `{"model":"gpt-4o-mini","messages":[
		{"role":"system","content":"Answer briefly."},
		{"role":"user","content":"What is the capital of France?"}],
		"max_tokens":200,"temperature":0.2,"top_p":0.9,"stop":["\n\n"],
		"response_format":{"type":"json_object"},
		"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`)
}

func TestCompleteReasoningUsesMaxCompletionTokens(t *testing.T) {
	c, tr := newClient(t, "success_reasoning.http", nil)
	req := userReq("o4-mini")
	req.Reasoning = true
	req.MaxTokens = 4000
	req.Temperature = replay.Ptr(0.7)
	req.TopP = replay.Ptr(0.5)
	req.Extra = map[string]json.RawMessage{"seed": json.RawMessage(`7`), "reasoning_effort": json.RawMessage(`"low"`),
		"presence_penalty": json.RawMessage(`0.5`)} // o-series reject penalties, like temperature
	resp := replay.MustComplete(t, c, req)
	if resp.Usage != (provider.Usage{InputTokens: 21, OutputTokens: 214, ReasoningTokens: 192}) || resp.Model != "o4-mini-2025-04-16" {
		t.Errorf("resp = %+v", resp)
	}
	replay.JSONEqual(t, tr.Requests()[0].Body, `{"model":"o4-mini","messages":[
		{"role":"system","content":"Answer briefly."},
		{"role":"user","content":"What is the capital of France?"}],
		"max_completion_tokens":4000,"reasoning_effort":"low","seed":7}`)
}

func TestCompleteToolCallsAndMessagePassThrough(t *testing.T) {
	c, tr := newClient(t, "success_tool_calls.http", func(o *provider.Options) {
		o.APIKey = "" // keyless (Ollama, vLLM)
		o.BaseURL = "http://localhost:11434/v1/"
		o.Headers = map[string]string{"X-Title": "llmbatch-test"}
	})
	var parts request.Content
	if err := json.Unmarshal([]byte(`[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]`), &parts); err != nil {
		t.Fatal(err)
	}
	calls := json.RawMessage(`[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Rome\"}"}}]`)
	req := &provider.Request{Model: "llama3.2", Messages: []request.Message{
		{Role: "user", Content: parts},
		{Role: "assistant", ToolCalls: calls},
		{Role: "tool", ToolCallID: "call_1", Content: request.Content{Text: `{"temp_c":21}`}},
	}, Extra: map[string]json.RawMessage{"tool_choice": json.RawMessage(`{"type": "function", "function": {"name": "get_weather"}}`),
		"parallel_tool_calls": json.RawMessage(`false`), "user": json.RawMessage(`"u-42"`)}}
	resp := replay.MustComplete(t, c, req)
	if resp.Content != "" || resp.FinishReason != "tool_calls" {
		t.Errorf("resp = %+v", resp)
	}
	replay.JSONEqual(t, resp.ToolCalls, `[{"id":"call_Xy7pQ2mN4kL8vB3jH6tR1wZs","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris, France\"}"}}]`)

	r := tr.Requests()[0]
	if r.URL != "http://localhost:11434/v1/chat/completions" {
		t.Errorf("URL = %s", r.URL)
	}
	if _, ok := r.Header["Authorization"]; ok {
		t.Errorf("keyless client sent Authorization")
	}
	if r.Header.Get("X-Title") != "llmbatch-test" {
		t.Errorf("extra header missing: %v", r.Header)
	}
	replay.JSONEqual(t, r.Body, `{"model":"llama3.2","messages":[
		{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Rome\"}"}}]},
		{"role":"tool","content":"{\"temp_c\":21}","tool_call_id":"call_1"}],
		"tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false,"user":"u-42"}`)
}

func TestRequestsPerDayOption(t *testing.T) {
	// Remaining == limit: nothing to infer the window from, so only the option can say "per day".
	hc := replay.Serve(200, http.Header{"X-Ratelimit-Limit-Requests": {"1000"}, "X-Ratelimit-Remaining-Requests": {"1000"},
		"X-Ratelimit-Reset-Requests": {"0s"}}, `{"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}]}`)
	for _, daily := range []bool{false, true} {
		c := replay.MustNew(t, openai.New, provider.Options{Client: hc, RequestsPerDay: daily})
		resp := replay.MustComplete(t, c, userReq("m"))
		if resp.Limits.RequestsPerDay != daily || resp.Content != "ok" || resp.Model != "m" {
			t.Errorf("daily=%v: resp = %+v", daily, resp)
		}
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	_, err := openai.New(provider.Options{Name: "local", BaseURL: "localhost:8080/v1"})
	if err == nil || !strings.HasPrefix(err.Error(), "local: bad base_url") {
		t.Errorf("err = %v", err)
	}
}

func TestParseErrorShapes(t *testing.T) {
	for _, tc := range []struct {
		body string
		want provider.ErrorInfo
	}{
		{`{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}`,
			provider.ErrorInfo{Type: "BadRequestError", Code: "400", Message: "max_tokens is too large", Class: provider.TypeBadRequest}},
		{`{"error":"model 'llama9' not found"}`, provider.ErrorInfo{Message: "model 'llama9' not found", Class: provider.TypeBadRequest}},
		{`{"detail":"Not Found"}`, provider.ErrorInfo{Message: "Not Found", Class: provider.TypeBadRequest}},
		{`not json`, provider.ErrorInfo{Class: provider.TypeBadRequest}},
	} {
		if got := (openai.Codec{}).ParseError(400, []byte(tc.body)); got != tc.want {
			t.Errorf("ParseError(%s) = %+v, want %+v", tc.body, got, tc.want)
		}
	}
}

// BenchmarkOpenAIRoundTrip measures one adapter round trip (encode, send through an in-process
// RoundTripper, read, parse headers and body) on a canned success.
func BenchmarkOpenAIRoundTrip(b *testing.B) {
	rec, err := replay.Load(replay.Dir("openai") + "/success.http")
	if err != nil {
		b.Fatal(err)
	}
	rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		return replay.Response(r, rec), nil
	})
	c := replay.MustNew(b, openai.New, provider.Options{APIKey: key, Client: &http.Client{Transport: rt}})
	req := userReq("gpt-4o-mini")
	req.MaxTokens = 200
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Complete(ctx, req)
		if err != nil || resp.Usage.InputTokens != 1536 {
			b.Fatal(resp, err)
		}
	}
}
