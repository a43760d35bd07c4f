package gemini_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/gemini"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
	"github.com/llmbatch/llmbatch/pkg/request"
)

const key = "AIzaTESTKEY-do-not-leak-0123456789"

var t0 = replay.Now()

func text(s string) request.Content { return request.Content{Text: s} }

func newClient(t testing.TB, fixture string) (*provider.Adapter, *replay.Transport) {
	return replay.Adapter(t, gemini.New, "gemini", fixture, provider.Options{Name: "gemini", APIKey: key})
}

func TestCompleteSuccess(t *testing.T) {
	c, tr := newClient(t, "success.http")
	req := &provider.Request{
		Model: "gemini-2.5-flash",
		Messages: []request.Message{
			{Role: "system", Content: text("Answer briefly.")},
			{Role: "user", Content: text("What is the capital of France?")},
		},
		MaxTokens:      256,
		Temperature:    replay.Ptr(0.0),
		TopP:           replay.Ptr(0.95),
		Stop:           []string{"END"},
		ResponseFormat: json.RawMessage(`{"type":"json_object"}`),
	}
	resp := replay.MustComplete(t, c, req)
	want := &provider.Response{
		Content:      "The capital of France is Paris.",
		FinishReason: "stop",
		Usage:        provider.Usage{InputTokens: 1290, OutputTokens: 7 + 83, CachedTokens: 1024, ReasoningTokens: 83},
		Model:        "gemini-2.5-flash",
		RequestID:    "kJ5IaPX3LdWcz7IP8a2N4Qg",
		Limits:       provider.RateLimits{ObservedAt: t0},
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("response\n got  %+v\n want %+v", resp, want)
	}
	r := tr.Requests()[0]
	if r.URL != "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent" {
		t.Errorf("URL = %s", r.URL)
	}
	if r.Header.Get("x-goog-api-key") != key || strings.Contains(r.URL, key) || r.Header.Get("Authorization") != "" {
		t.Errorf("auth: url %s headers %v", r.URL, r.Header)
	}
	replay.JSONEqual(t, r.Body, `{
		"contents":[{"role":"user","parts":[{"text":"What is the capital of France?"}]}],
		"systemInstruction":{"parts":[{"text":"Answer briefly."}]},
		"generationConfig":{"maxOutputTokens":256,"temperature":0,"topP":0.95,"stopSequences":["END"],"responseMimeType":"application/json"}}`)
}

func TestCompleteFunctionCallingConversation(t *testing.T) {
	c, tr := newClient(t, "success_function_call.http")
	var parts request.Content
	if err := json.Unmarshal([]byte(`[{"type":"text","text":"Also this:"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]`), &parts); err != nil {
		t.Fatal(err)
	}
	req := &provider.Request{
		Model: "models/gemini-2.5-flash",
		Messages: []request.Message{
			{Role: "developer", Content: text("Be terse.")},
			{Role: "user", Content: text("Weather in Rome?")},
			{Role: "assistant", ToolCalls: json.RawMessage(`[{"id":"call_7","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Rome\"}"}}]`)},
			{Role: "tool", ToolCallID: "call_7", Content: text("21C and sunny")},
			{Role: "user", Content: parts},
		},
		ResponseFormat: json.RawMessage(`{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object","properties":{"t":{"type":"number"}}}}}`),
		Tools:          json.RawMessage(`[{"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":{"type":"object","properties":{"location":{"type":"string"}},"additionalProperties":false}}}]`),
		Extra: map[string]json.RawMessage{"tool_choice": json.RawMessage(`{"type":"function","function":{"name":"get_weather"}}`),
			"seed": json.RawMessage(`42`), "frequency_penalty": json.RawMessage(`0.2`), "logit_bias": json.RawMessage(`{"50256":-100}`)},
	}
	resp := replay.MustComplete(t, c, req)
	if resp.Content != "" || resp.FinishReason != "tool_calls" || resp.Usage != (provider.Usage{InputTokens: 64, OutputTokens: 77, ReasoningTokens: 61}) {
		t.Errorf("resp = %+v (thought text must not leak into Content)", resp)
	}
	replay.JSONEqual(t, resp.ToolCalls, `[{"id":"call_0","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris, France\"}"}}]`)

	r := tr.Requests()[0]
	if r.URL != "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent" {
		t.Errorf("URL = %s", r.URL)
	}
	replay.JSONEqual(t, r.Body, `{
		"contents":[
			{"role":"user","parts":[{"text":"Weather in Rome?"}]},
			{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"location":"Rome"}}}]},
			{"role":"user","parts":[
				{"functionResponse":{"name":"get_weather","response":{"result":"21C and sunny"}}},
				{"text":"Also this:"},
				{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}]}],
		"systemInstruction":{"parts":[{"text":"Be terse."}]},
		"generationConfig":{"responseMimeType":"application/json","responseJsonSchema":{"type":"object","properties":{"t":{"type":"number"}}},
			"seed":42,"frequencyPenalty":0.2},
		"tools":[{"functionDeclarations":[{"name":"get_weather","description":"Weather now",
			"parametersJsonSchema":{"type":"object","properties":{"location":{"type":"string"}},"additionalProperties":false}}]}],
		"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}}}`)
}

func TestCompleteBlockedPrompt(t *testing.T) {
	c, _ := newClient(t, "success_blocked.http")
	resp := replay.MustComplete(t, c, &provider.Request{Model: "gemini-2.5-flash", Messages: []request.Message{{Role: "user", Content: text("...")}}})
	if resp.FinishReason != "content_filter" || resp.Content != "" || resp.Usage.InputTokens != 18 || resp.RequestID != "rJ9IaMe1Ha6Fz7IPn8XWoQk" {
		t.Errorf("resp = %+v", resp)
	}
}

func TestParseErrorArrayForm(t *testing.T) {
	body := `[{"error":{"code":429,"message":"Resource exhausted. Please try again later.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.5s"}]}}]`
	got := (gemini.Codec{}).ParseError(429, []byte(body))
	want := provider.ErrorInfo{Type: "RESOURCE_EXHAUSTED", Message: "Resource exhausted. Please try again later.", RetryAfter: 500 * time.Millisecond,
		Class: provider.TypeRateLimit}
	if got != want {
		t.Errorf("ParseError = %+v, want %+v", got, want)
	}
}

// TestFinishReasons: the hostile bodies are tested for all adapters in pkg/provider/adapters.
func TestFinishReasons(t *testing.T) {
	req := &provider.Request{Model: "m", Messages: []request.Message{{Role: "user", Content: text("hi")}}}
	for fr, want := range map[string]string{"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
		"RECITATION": "content_filter", "MALFORMED_FUNCTION_CALL": "MALFORMED_FUNCTION_CALL"} {
		body := `{"candidates":[{"content":{"role":"model","parts":[{"text":"a"},{"text":"b"}]},"finishReason":"` + fr + `"}]}`
		c := replay.MustNew(t, gemini.New, provider.Options{BaseURL: "http://sim.invalid/v1beta", Client: replay.Serve(200, nil, body)})
		resp := replay.MustComplete(t, c, req)
		if resp.FinishReason != want || resp.Content != "ab" || resp.Model != "m" {
			t.Errorf("%s: resp = %+v", fr, resp)
		}
	}
}
