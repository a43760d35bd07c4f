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
