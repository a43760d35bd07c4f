package anthropic_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/anthropic"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
	"github.com/llmbatch/llmbatch/pkg/request"
)

const key = "sk-ant-api03-TESTKEY-do-not-leak"

var t0 = replay.Now()

func newClient(t testing.TB, fixture string) (*provider.Adapter, *replay.Transport) {
	return replay.Adapter(t, anthropic.New, "anthropic", fixture, provider.Options{Name: "anthropic", APIKey: key})
}

func text(s string) request.Content { return request.Content{Text: s} }

func TestCompleteSuccess(t *testing.T) {
	c, tr := newClient(t, "success.http")
	req := &provider.Request{Model: "claude-3-5-haiku-latest", Messages: []request.Message{
		{Role: "system", Content: text("Answer briefly.")},
		{Role: "user", Content: text("What is the capital of France?")},
	}}
	resp := replay.MustComplete(t, c, req)
	want := &provider.Response{
		Content:      "The capital of France is Paris.",
		FinishReason: "stop",
		Usage:        provider.Usage{InputTokens: 412 + 1588, OutputTokens: 10, CachedTokens: 1588},
		Model:        "claude-3-5-haiku-20241022",
		RequestID:    "req_011CQ3xPz7mWk9vRtYbN2sLq",
		Limits: provider.RateLimits{ObservedAt: t0, LimitRequests: 50, RemainingRequests: 49, ResetRequests: 2 * time.Second,
			LimitTokens: 60000, RemainingTokens: 57964, ResetTokens: time.Second, HasRequests: true, HasTokens: true},
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("response\n got  %+v\n want %+v", resp, want)
	}
	r := tr.Requests()[0]
	if r.URL != "https://api.anthropic.com/v1/messages" || r.Method != "POST" {
		t.Errorf("sent %s %s", r.Method, r.URL)
	}
	if r.Header.Get("x-api-key") != key || r.Header.Get("anthropic-version") != "2023-06-01" || r.Header.Get("Authorization") != "" {
		t.Errorf("headers %v", r.Header)
	}
	replay.JSONEqual(t, r.Body, `{"model":"claude-3-5-haiku-latest","max_tokens":4096,"system":"Answer briefly.",
		"messages":[{"role":"user","content":[{"type":"text","text":"What is the capital of France?"}]}]}`)
}

func TestCompleteTranslatesConversation(t *testing.T) {
	c, tr := newClient(t, "success_tool_use.http")
	var parts request.Content
	if err := json.Unmarshal([]byte(`[{"type":"text","text":"And this picture?"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}},{"type":"text","text":""}]`), &parts); err != nil {
		t.Fatal(err)
	}
	req := &provider.Request{
		Model:     "claude-sonnet-4-20250514",
		MaxTokens: 1024,
		Messages: []request.Message{
			{Role: "system", Content: text("You are a weather bot.")},
			{Role: "developer", Content: text("Use tools when needed.")},
			{Role: "user", Content: text("Hi.")},
			{Role: "user", Content: text("Weather in Paris?")},
			{Role: "assistant", Content: text("Checking."), ToolCalls: json.RawMessage(`[{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}]`)},
			{Role: "tool", ToolCallID: "toolu_1", Content: text(`{"temp_c":21}`)},
			{Role: "user", Content: parts},
		},
		Temperature:    replay.Ptr(0.3),
		Stop:           []string{"END"},
		ResponseFormat: json.RawMessage(`{"type":"json_object"}`),
		Tools: json.RawMessage(`[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}},
			{"type":"function","function":{"name":"now"}},
			{"type":"web_search_20250305","name":"web_search","max_uses":2}]`),
		Extra: map[string]json.RawMessage{"tool_choice": json.RawMessage(`"required"`), "parallel_tool_calls": json.RawMessage(`false`),
			"seed": json.RawMessage(`7`)}, // no seed in the Messages API: dropped
	}
	resp := replay.MustComplete(t, c, req)
	if resp.Content != "I'll check the current weather in Paris for you." || resp.FinishReason != "tool_calls" ||
		resp.Usage != (provider.Usage{InputTokens: 384, OutputTokens: 71}) {
		t.Errorf("resp = %+v", resp)
	}
	replay.JSONEqual(t, resp.ToolCalls, `[{"id":"toolu_01A09q90qw90lq917835lq9","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris, France\"}"}}]`)

	replay.JSONEqual(t, tr.Requests()[0].Body, `{
		"model":"claude-sonnet-4-20250514","max_tokens":1024,
		"system":"You are a weather bot.\n\nUse tools when needed.",
		"messages":[
			{"role":"user","content":[{"type":"text","text":"Hi."},{"type":"text","text":"Weather in Paris?"}]},
			{"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"Paris"}}]},
			{"role":"user","content":[
				{"type":"tool_result","tool_use_id":"toolu_1","content":"{\"temp_c\":21}"},
				{"type":"text","text":"And this picture?"},
				{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
				{"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}}]}],
		"temperature":0.3,"stop_sequences":["END"],
		"tools":[
			{"name":"get_weather","description":"Current weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}},
			{"name":"now","input_schema":{"type":"object","properties":{}}},
			{"type":"web_search_20250305","name":"web_search","max_uses":2}],
		"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`)
}

func TestCompleteRejectsBadInput(t *testing.T) {
	c, tr := newClient(t, "success.http")
	for name, req := range map[string]*provider.Request{
		"unknown role": {Model: "m", Messages: []request.Message{{Role: "narrator", Content: text("x")}}},
		"bad tool args": {Model: "m", Messages: []request.Message{{Role: "assistant",
			ToolCalls: json.RawMessage(`[{"id":"t","type":"function","function":{"name":"f","arguments":"{not json"}}]`)}}},
		"bad tools": {Model: "m", Messages: []request.Message{{Role: "user", Content: text("x")}}, Tools: json.RawMessage(`{"a":1}`)},
		"bad tool_choice": {Model: "m", Messages: []request.Message{{Role: "user", Content: text("x")}},
			Tools: json.RawMessage(`[{"type":"function","function":{"name":"f"}}]`), Extra: map[string]json.RawMessage{"tool_choice": json.RawMessage(`"always"`)}},
	} {
		_, err := c.Complete(context.Background(), req)
		if err == nil || !strings.HasPrefix(err.Error(), "anthropic: m: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if n := len(tr.Requests()); n != 0 {
		t.Errorf("invalid requests were sent: %d", n)
	}
}

func TestOptions(t *testing.T) {
	c, tr := replay.Adapter(t, anthropic.New, "anthropic", "success.http", provider.Options{Name: "claude", BaseURL: "http://proxy.local:8080/",
		APIKey: key, DefaultMaxTokens: 512, Headers: map[string]string{"anthropic-beta": "prompt-caching-2024-07-31", "anthropic-version": "2024-01-01"}})
	if c.Name() != "claude" {
		t.Errorf("Name = %q", c.Name())
	}
	if _, err := c.Complete(context.Background(), &provider.Request{Model: "m", Messages: []request.Message{{Role: "user", Content: text("hi")}}}); err != nil {
		t.Fatal(err)
	}
	r := tr.Requests()[0]
	if r.URL != "http://proxy.local:8080/v1/messages" || r.Header.Get("anthropic-beta") != "prompt-caching-2024-07-31" ||
		r.Header.Get("anthropic-version") != "2024-01-01" {
		t.Errorf("sent %s %v", r.URL, r.Header)
	}
	var body struct {
		MaxTokens int `json:"max_tokens"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.MaxTokens != 512 {
		t.Errorf("max_tokens = %d (%v)", body.MaxTokens, err)
	}
}

func TestFinishReasons(t *testing.T) {
	for stop, want := range map[string]string{"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
		"tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "pause_turn"} {
		body := `{"id":"msg_1","type":"message","model":"m","content":[{"type":"text","text":"a"},{"type":"thinking","thinking":"hmm"},{"type":"text","text":"b"}],"stop_reason":"` + stop + `","usage":{"input_tokens":1,"output_tokens":2}}`
		c := replay.MustNew(t, anthropic.New, provider.Options{Client: replay.Serve(200, nil, body)})
		resp := replay.MustComplete(t, c, &provider.Request{Model: "m", Messages: []request.Message{{Role: "user", Content: text("hi")}}})
		if resp.FinishReason != want || resp.Content != "ab" || resp.RequestID != "msg_1" {
			t.Errorf("%s: resp = %+v", stop, resp)
		}
	}
}
