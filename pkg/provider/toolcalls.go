package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ToolCall is one tool call in the OpenAI wire shape, the shape Request messages and
// Response.ToolCalls carry; adapters for other APIs translate to and from it.
type ToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"` // always "function"
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"` // a JSON object, as a string
	} `json:"function"`
}

// NewToolCall returns the OpenAI-shaped call of a tool another API reports, with its arguments
// compacted; empty or null arguments become {}.
func NewToolCall(id, name string, args json.RawMessage) ToolCall {
	args = bytes.TrimSpace(args)
	if len(args) == 0 || bytes.Equal(args, []byte("null")) {
		args = []byte("{}")
	}
	tc := ToolCall{ID: id, Type: "function"}
	tc.Function.Name = name
	var buf bytes.Buffer
	if json.Compact(&buf, args) == nil {
		args = buf.Bytes()
	}
	tc.Function.Arguments = string(args)
	return tc
}

// DecodeToolCalls parses an assistant message's OpenAI-shaped tool_calls (nil for none). Each call's
// Arguments comes back as valid JSON ({} when empty); arguments that are not JSON are an error,
// since no API accepts them.
func DecodeToolCalls(raw json.RawMessage) ([]ToolCall, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var calls []ToolCall
	if err := json.Unmarshal(raw, &calls); err != nil {
		return nil, fmt.Errorf("decode tool_calls: %w", err)
	}
	for i := range calls {
		args := strings.TrimSpace(calls[i].Function.Arguments)
		if args == "" {
			args = "{}"
		}
		if !json.Valid([]byte(args)) {
			return nil, fmt.Errorf("tool call %q: arguments are not valid JSON", calls[i].ID)
		}
		calls[i].Function.Arguments = args
	}
	return calls, nil
}

// ToolChoice is an OpenAI tool_choice in neutral form, for adapters to translate.
type ToolChoice struct {
	Mode string // "auto", "none" or "required" (some tool must be called)
	Name string // with Mode "required": the one function that must be called; "" = any
}

// ParseToolChoice reads the request's pass-through tool_choice ("auto", "none", "required", or
// {"type":"function","function":{"name":...}}); ok is false when the request has none.
func ParseToolChoice(extra map[string]json.RawMessage) (tc ToolChoice, ok bool, err error) {
	raw, ok := extra["tool_choice"]
	if !ok {
		return ToolChoice{}, false, nil
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "auto", "none", "required":
			return ToolChoice{Mode: mode}, true, nil
		}
		return ToolChoice{}, false, fmt.Errorf("tool_choice %q: want auto, none, required or a function", mode)
	}
	var fn struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &fn); err != nil || fn.Type != "function" || fn.Function.Name == "" {
		return ToolChoice{}, false, fmt.Errorf(`tool_choice: want "auto", "none", "required" or {"type":"function","function":{"name":...}}`)
	}
	return ToolChoice{Mode: "required", Name: fn.Function.Name}, true, nil
}
