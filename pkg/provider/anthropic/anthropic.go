// Package anthropic is the provider adapter for the Anthropic Messages API: one
// POST {base_url}/v1/messages per Complete call, translating the neutral (OpenAI-shaped) request
// into Anthropic's system / messages / content blocks / tools and back.
package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
)

// DefaultBaseURL is used when Options.BaseURL is empty. Like the vendor SDKs it is the host; the
// adapter appends /v1/messages.
const DefaultBaseURL = "https://api.anthropic.com"

// APIVersion is the anthropic-version header sent unless Options.Headers sets another.
const APIVersion = "2023-06-01"

// DefaultMaxTokens is sent as max_tokens, which the Messages API requires, when neither the request
// nor Options.DefaultMaxTokens gives one.
const DefaultMaxTokens = 4096

// endpoint is POST {base_url}/v1/messages with x-api-key and anthropic-version (which
// Options.Headers may replace).
var endpoint = provider.Endpoint{
	DefaultName:     "anthropic",
	DefaultBaseURL:  DefaultBaseURL,
	URL:             func(base, _ string) string { return base + "/v1/messages" },
	Header:          http.Header{"Anthropic-Version": {APIVersion}},
	AuthHeader:      "x-api-key",
	RequestIDHeader: "request-id",
}

// New returns the Messages API adapter for o (o.DefaultMaxTokens is max_tokens for requests without
// one; DefaultMaxTokens when 0), or an error when the base URL is not an absolute http(s) URL.
func New(o provider.Options) (*provider.Adapter, error) {
	mt := o.DefaultMaxTokens
	if mt <= 0 {
		mt = DefaultMaxTokens
	}
	return provider.NewAdapter(endpoint, Codec{MaxTokens: mt}, o)
}

// Codec is the Messages API wire format.
//
// Encode: system and developer messages become the top-level system prompt, consecutive messages of
// the same role are merged, tool messages become tool_result blocks, assistant tool_calls become
// tool_use blocks, stop becomes stop_sequences, OpenAI function tools become {name, description,
// input_schema}, and tool_choice and parallel_tool_calls become tool_choice. ResponseFormat and the
// other pass-through parameters (seed, penalties, logprobs…) are not supported by the Messages API
// and are ignored.
//
// Decode requires "type":"message" and a content array: text blocks are joined into Content,
// tool_use blocks come back as OpenAI-shaped ToolCalls. Usage.InputTokens includes cache reads and
// writes (as OpenAI's prompt_tokens does); CachedTokens is the cache reads.
type Codec struct {
	MaxTokens int // max_tokens for requests without one
}

// Encode returns the /v1/messages body of req.
func (c Codec) Encode(req *provider.Request) ([]byte, error) {
	return provider.EncodeBody(c.buildRequest(req))
}

// Decode reads a /v1/messages response.
func (Codec) Decode(body []byte) (*provider.Response, error) {
	var r messagesResponse
	if err := provider.DecodeObject(body, &r); err != nil {
		return nil, err
	}
	switch {
	case r.Type != "message":
		return nil, fmt.Errorf("response type %q, want message", r.Type)
	case r.Content == nil:
		return nil, errors.New("response has no content")
	}
	out := &provider.Response{
		FinishReason: finishReason(r.StopReason),
		Model:        r.Model,
		RequestID:    r.ID,
		Usage: provider.Usage{
			InputTokens:  r.Usage.InputTokens + r.Usage.CacheReadInputTokens + r.Usage.CacheCreationInputTokens,
			OutputTokens: r.Usage.OutputTokens,
			CachedTokens: r.Usage.CacheReadInputTokens,
		},
	}
	var text strings.Builder
	var calls []provider.ToolCall
	for _, b := range r.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			calls = append(calls, provider.NewToolCall(b.ID, b.Name, b.Input))
		}
	}
	out.Content = text.String()
	if len(calls) > 0 {
		raw, err := json.Marshal(calls)
		if err != nil {
			return nil, fmt.Errorf("encode tool calls: %w", err)
		}
		out.ToolCalls = raw
	}
	return out, nil
}

// ParseError reads an error body (see parseError) and classifies it with vocabulary.
func (Codec) ParseError(status int, body []byte) provider.ErrorInfo {
	return vocabulary.Parse(status, body, parseError)
}

// vocabulary is how the Messages API words its errors.
var vocabulary = provider.Vocabulary{
	Overloaded: provider.Terms{Tokens: []string{"overloaded_error"}}, // 529, on occasion other statuses
	Quota: provider.Terms{Tokens: []string{"enforced_spend_limit_reached", "billing_error"},
		Phrases: []string{"credit balance is too low"}},
	Auth:          provider.Terms{Tokens: []string{"authentication_error"}},
	ContextLength: provider.Terms{Tokens: []string{"request_too_large"}, Phrases: []string{"prompt is too long", "exceed context limit"}},
}

// finishReason maps stop_reason to the neutral finish reason; unknown values pass through.
func finishReason(s string) string {
	switch s {
	case "end_turn", "stop_sequence":
		return "stop"
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return s
}

// messagesRequest is the /v1/messages request body.
type messagesRequest struct {
	Model         string            `json:"model"`
	MaxTokens     int               `json:"max_tokens"`
	System        string            `json:"system,omitempty"`
	Messages      []message         `json:"messages"`
	Temperature   *float64          `json:"temperature,omitempty"`
	TopP          *float64          `json:"top_p,omitempty"`
	StopSequences []string          `json:"stop_sequences,omitempty"`
	Tools         []json.RawMessage `json:"tools,omitempty"`
	ToolChoice    *toolChoice       `json:"tool_choice,omitempty"`
}

// toolChoice is Anthropic's tool_choice.
type toolChoice struct {
	Type                   string `json:"type"` // auto | any | tool | none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// message is one Anthropic turn; each block is a struct or a raw pass-through part.
type message struct {
	Role    string `json:"role"`
	Content []any  `json:"content"`
}

type textBlock struct {
	Type string `json:"type"` // text
	Text string `json:"text"`
}

type imageBlock struct {
	Type   string      `json:"type"` // image
	Source imageSource `json:"source"`
}

type imageSource struct {
	Type      string `json:"type"` // base64 | url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type toolUseBlock struct {
	Type  string          `json:"type"` // tool_use
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

type toolResultBlock struct {
	Type      string `json:"type"` // tool_result
	ToolUseID string `json:"tool_use_id"`
	Content   string `json:"content"`
}

func (c Codec) buildRequest(req *provider.Request) (*messagesRequest, error) {
	mr := &messagesRequest{
		Model:         req.Model,
		MaxTokens:     req.MaxTokens,
		Temperature:   req.Temperature,
		TopP:          req.TopP,
		StopSequences: req.Stop,
	}
	if mr.MaxTokens <= 0 {
		mr.MaxTokens = c.MaxTokens
	}
	var system []string
	for i := range req.Messages {
		m := &req.Messages[i]
		role := m.Role
		var blocks []any
		switch m.Role {
		case "system", "developer":
			if s := m.Content.String(); s != "" {
				system = append(system, s)
			}
			continue
		case "user":
			blocks = contentBlocks(m.Content)
		case "assistant":
			blocks = contentBlocks(m.Content)
			uses, err := toolUses(m.ToolCalls)
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
			blocks = append(blocks, uses...)
		case "tool":
			role = "user"
			blocks = []any{toolResultBlock{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Content.String()}}
		default:
			return nil, fmt.Errorf("message %d: unsupported role %q", i, m.Role)
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(mr.Messages); n > 0 && mr.Messages[n-1].Role == role {
			mr.Messages[n-1].Content = append(mr.Messages[n-1].Content, blocks...)
			continue
		}
		mr.Messages = append(mr.Messages, message{Role: role, Content: blocks})
	}
	mr.System = strings.Join(system, "\n\n")
	tools, err := translateTools(req.Tools)
	if err != nil {
		return nil, err
	}
	mr.Tools = tools
	if len(tools) > 0 {
		if mr.ToolChoice, err = translateToolChoice(req.Extra); err != nil {
			return nil, err
		}
	}
	return mr, nil
}

// translateToolChoice maps OpenAI's tool_choice and parallel_tool_calls: false onto Anthropic's
// tool_choice; nil when the request sets neither.
func translateToolChoice(extra map[string]json.RawMessage) (*toolChoice, error) {
	tc, ok, err := provider.ParseToolChoice(extra)
	if err != nil {
		return nil, err
	}
	serial := string(extra["parallel_tool_calls"]) == "false"
	if !ok && !serial {
		return nil, nil
	}
	out := &toolChoice{Type: "auto", DisableParallelToolUse: serial}
	switch {
	case tc.Mode == "none":
		out.Type, out.DisableParallelToolUse = "none", false // the API allows the flag only with tools in use
	case tc.Name != "":
		out.Type, out.Name = "tool", tc.Name
	case tc.Mode == "required":
		out.Type = "any"
	}
	return out, nil
}

// contentBlocks turns a message content into Anthropic blocks: text (empty text dropped, as the API
// rejects it), OpenAI image_url parts as image blocks, anything else passed through raw.
func contentBlocks(c request.Content) []any {
	if c.Parts == nil {
		if c.Text == "" {
			return nil
		}
		return []any{textBlock{Type: "text", Text: c.Text}}
	}
	var out []any
	for _, p := range c.Parts {
		switch p.Type {
		case "text", "input_text":
			if p.Text != "" {
				out = append(out, textBlock{Type: "text", Text: p.Text})
			}
		case "image_url":
			if b, ok := imageFromPart(p.Raw); ok {
				out = append(out, b)
				continue
			}
			out = append(out, json.RawMessage(p.Raw))
		default:
			if len(p.Raw) > 0 {
				out = append(out, json.RawMessage(p.Raw))
			}
		}
	}
	return out
}

// imageFromPart converts {"type":"image_url","image_url":{"url":...}} (a data: URL or an http(s) URL).
func imageFromPart(raw json.RawMessage) (imageBlock, bool) {
	var p struct {
		ImageURL struct {
			URL string `json:"url"`
		} `json:"image_url"`
	}
	if json.Unmarshal(raw, &p) != nil || p.ImageURL.URL == "" {
		return imageBlock{}, false
	}
	u := p.ImageURL.URL
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, isB64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isB64 {
			return imageBlock{}, false
		}
		return imageBlock{Type: "image", Source: imageSource{Type: "base64", MediaType: mediaType, Data: data}}, true
	}
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		return imageBlock{Type: "image", Source: imageSource{Type: "url", URL: u}}, true
	}
	return imageBlock{}, false
}

// toolUses converts OpenAI tool_calls into tool_use blocks.
func toolUses(raw json.RawMessage) ([]any, error) {
	calls, err := provider.DecodeToolCalls(raw)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(calls))
	for _, tc := range calls {
		out = append(out, toolUseBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: json.RawMessage(tc.Function.Arguments)})
	}
	return out, nil
}

// translateTools turns OpenAI function tools into {name, description, input_schema}; other tools
// (already in Anthropic's shape, or server tools) pass through.
func translateTools(raw json.RawMessage) ([]json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var tools []json.RawMessage
	if err := json.Unmarshal(raw, &tools); err != nil {
		return nil, fmt.Errorf("decode tools: %w", err)
	}
	out := make([]json.RawMessage, 0, len(tools))
	for i, t := range tools {
		var ot struct {
			Type     string `json:"type"`
			Function *struct {
				Name        string          `json:"name"`
				Description string          `json:"description,omitempty"`
				Parameters  json.RawMessage `json:"parameters"`
			} `json:"function"`
		}
		if err := json.Unmarshal(t, &ot); err != nil {
			return nil, fmt.Errorf("decode tool %d: %w", i, err)
		}
		if ot.Type != "function" || ot.Function == nil {
			out = append(out, t)
			continue
		}
		schema := ot.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || bytes.Equal(bytes.TrimSpace(schema), []byte("null")) {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		b, err := json.Marshal(struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			InputSchema json.RawMessage `json:"input_schema"`
		}{ot.Function.Name, ot.Function.Description, schema})
		if err != nil {
			return nil, fmt.Errorf("encode tool %d: %w", i, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// messagesResponse is the part of a /v1/messages response the adapter reads.
type messagesResponse struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Model      string `json:"model"`
	StopReason string `json:"stop_reason"`
	Content    []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	Usage struct {
		InputTokens              int `json:"input_tokens"`
		OutputTokens             int `json:"output_tokens"`
		CacheReadInputTokens     int `json:"cache_read_input_tokens"`
		CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	} `json:"usage"`
}

// parseError reads an Anthropic error body
// {"type":"error","error":{"type":"rate_limit_error","message":...,"details":{"error_code":...}},"request_id":...}:
// Type is error.type (rate_limit_error, overloaded_error, invalid_request_error, ...), Code is
// error.details.error_code when sent (enforced_spend_limit_reached).
func parseError(body []byte) provider.ErrorInfo {
	var env struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Details *struct {
				ErrorCode string `json:"error_code"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil {
		return provider.ErrorInfo{}
	}
	info := provider.ErrorInfo{Type: env.Error.Type, Message: env.Error.Message}
	if env.Error.Details != nil {
		info.Code = env.Error.Details.ErrorCode
	}
	return info
}
