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
