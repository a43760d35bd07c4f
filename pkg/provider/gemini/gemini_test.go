package gemini_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
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

var t0, now = replay.Now(), replay.Now

func text(s string) request.Content { return request.Content{Text: s} }

func newClient(t testing.TB, fixture string) (*gemini.Client, *replay.Transport) {
	return replay.Adapter(t, gemini.New, "gemini", fixture, gemini.Options{Name: "gemini", APIKey: key})
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
	resp, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
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
	resp, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
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
	resp, err := c.Complete(context.Background(), &provider.Request{Model: "gemini-2.5-flash", Messages: []request.Message{{Role: "user", Content: text("...")}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.FinishReason != "content_filter" || resp.Content != "" || resp.Usage.InputTokens != 18 || resp.RequestID != "rJ9IaMe1Ha6Fz7IPn8XWoQk" {
		t.Errorf("resp = %+v", resp)
	}
}

func TestCompleteErrors(t *testing.T) {
	tests := []struct {
		fixture    string
		status     int
		typ, code  string
		msg        string
		retryAfter time.Duration
	}{
		{"429_resource_exhausted.http", 429, "RESOURCE_EXHAUSTED", "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "You exceeded your current quota", 7 * time.Second},
		{"429_limit_zero.http", 429, "RESOURCE_EXHAUSTED", "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "limit: 0, model: gemini-2.5-pro", 38962214405 * time.Nanosecond},
		{"400_token_limit.http", 400, "INVALID_ARGUMENT", "", "exceeds the maximum number of tokens allowed (1048576)", 0},
		{"400_api_key_invalid.http", 400, "INVALID_ARGUMENT", "API_KEY_INVALID", "API key not valid", 0},
		{"500_internal.http", 500, "INTERNAL", "", "An internal error has occurred", 0},
		{"503_unavailable.http", 503, "UNAVAILABLE", "", "The model is overloaded", 0},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			c, _ := newClient(t, tt.fixture)
			resp, err := c.Complete(context.Background(), &provider.Request{Model: "gemini-2.5-pro", Messages: []request.Message{{Role: "user", Content: text("hi")}}})
			var ae *provider.APIError
			if resp != nil || !errors.As(err, &ae) {
				t.Fatalf("resp=%v err=%v", resp, err)
			}
			if ae.StatusCode != tt.status || ae.Type != tt.typ || ae.Code != tt.code || !strings.Contains(ae.Message, tt.msg) ||
				ae.RetryAfter != tt.retryAfter || ae.Limits.RetryAfter != tt.retryAfter || !ae.Limits.ObservedAt.Equal(t0) {
				t.Errorf("apiErr = %+v", ae)
			}
			if !strings.HasPrefix(err.Error(), "gemini: gemini-2.5-pro: HTTP ") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}

func TestParseErrorArrayForm(t *testing.T) {
	body := `[{"error":{"code":429,"message":"Resource exhausted. Please try again later.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.5s"}]}}]`
	got := gemini.ParseError(429, []byte(body))
	want := provider.ErrorInfo{Type: "RESOURCE_EXHAUSTED", Message: "Resource exhausted. Please try again later.", RetryAfter: 500 * time.Millisecond,
		Class: provider.TypeRateLimit}
	if got != want {
		t.Errorf("ParseError = %+v, want %+v", got, want)
	}
}

func TestKeyNeverInErrors(t *testing.T) {
	rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		body := `{"error":{"code":400,"message":"API key not valid: ` + r.Header.Get("x-goog-api-key") + `","status":"INVALID_ARGUMENT"}}`
		return replay.Response(r, &replay.Recorded{StatusCode: 400, Status: "400 Bad Request", Header: http.Header{}, Body: []byte(body)}), nil
	})
	c, err := gemini.New(gemini.Options{APIKey: key, Client: &http.Client{Transport: rt}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Complete(context.Background(), &provider.Request{Model: "m", Messages: []request.Message{{Role: "user", Content: text("hi")}}})
	var ae *provider.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), key) || bytes.Contains(ae.Body, []byte(key)) || !strings.Contains(ae.Message, "[redacted]") {
		t.Fatalf("key leaked or not redacted: %q / %q", err.Error(), ae.Body)
	}
}

func TestMalformedAndFinishReasons(t *testing.T) {
	serve := func(body string) *gemini.Client {
		rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			return replay.Response(r, &replay.Recorded{StatusCode: 200, Status: "200 OK", Header: http.Header{}, Body: []byte(body)}), nil
		})
		c, err := gemini.New(gemini.Options{BaseURL: "http://sim.invalid/v1beta", Client: &http.Client{Transport: rt}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	req := &provider.Request{Model: "m", Messages: []request.Message{{Role: "user", Content: text("hi")}}}
	for _, body := range []string{`{"candidates":[]}`, `{"candidates":[{"content":{"parts":"oops"}}]}`, `Service Unavailable`} {
		_, err := serve(body).Complete(context.Background(), req)
		var ae *provider.APIError
		if !errors.As(err, &ae) || !ae.Malformed || ae.StatusCode != 200 {
			t.Errorf("%s: err = %v", body, err)
		}
	}
	for fr, want := range map[string]string{"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
		"RECITATION": "content_filter", "MALFORMED_FUNCTION_CALL": "MALFORMED_FUNCTION_CALL"} {
		resp, err := serve(`{"candidates":[{"content":{"role":"model","parts":[{"text":"a"},{"text":"b"}]},"finishReason":"`+fr+`"}]}`).Complete(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.FinishReason != want || resp.Content != "ab" || resp.Model != "m" {
			t.Errorf("%s: resp = %+v", fr, resp)
		}
	}
}
