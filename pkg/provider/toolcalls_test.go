package provider

import (
	"encoding/json"
	"testing"
)

func TestToolCalls(t *testing.T) {
	calls, err := DecodeToolCalls(json.RawMessage(`[{"id":"a","type":"function","function":{"name":"f","arguments":" "}},
		{"id":"b","type":"function","function":{"name":"g","arguments":"{\"x\": 1}"}}]`))
	if err != nil || len(calls) != 2 || calls[0].Function.Arguments != "{}" || calls[1].Function.Arguments != `{"x": 1}` {
		t.Fatalf("decode: %+v %v", calls, err)
	}
	if _, err := DecodeToolCalls(json.RawMessage(`[{"id":"c","function":{"name":"f","arguments":"{oops"}}]`)); err == nil {
		t.Fatal("arguments that are not JSON were accepted")
	}
	if calls, err := DecodeToolCalls(nil); calls != nil || err != nil {
		t.Fatalf("no tool_calls: %+v %v", calls, err)
	}
	tc := NewToolCall("id1", "f", json.RawMessage(" { \"x\" : 1 } "))
	if tc.Type != "function" || tc.Function.Arguments != `{"x":1}` || tc.Function.Name != "f" {
		t.Fatalf("new: %+v", tc)
	}
	if NewToolCall("id2", "f", json.RawMessage("null")).Function.Arguments != "{}" {
		t.Fatal("null arguments must become {}")
	}
}

func TestParseToolChoice(t *testing.T) {
	for raw, want := range map[string]ToolChoice{
		`"auto"`: {Mode: "auto"}, `"none"`: {Mode: "none"}, `"required"`: {Mode: "required"},
		`{"type":"function","function":{"name":"f"}}`: {Mode: "required", Name: "f"},
	} {
		got, ok, err := ParseToolChoice(map[string]json.RawMessage{"tool_choice": json.RawMessage(raw)})
		if err != nil || !ok || got != want {
			t.Errorf("%s: %+v, %v, %v; want %+v", raw, got, ok, err, want)
		}
	}
	for _, raw := range []string{`"always"`, `{"type":"function"}`, `3`} {
		if _, _, err := ParseToolChoice(map[string]json.RawMessage{"tool_choice": json.RawMessage(raw)}); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
	if _, ok, err := ParseToolChoice(nil); ok || err != nil {
		t.Errorf("no tool_choice: ok %v, err %v", ok, err)
	}
}
