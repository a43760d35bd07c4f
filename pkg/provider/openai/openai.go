// Package openai is the provider adapter for the OpenAI Chat Completions API and the many APIs
// compatible with it (Groq, OpenRouter, Together, DeepSeek, vLLM, Ollama, ...): one
// POST {base_url}/chat/completions per Complete call.
package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
)

// DefaultBaseURL is used when Options.BaseURL is empty. Like the vendor SDKs, it includes the
// API version; the adapter appends /chat/completions.
const DefaultBaseURL = "https://api.openai.com/v1"

// endpoint is POST {base_url}/chat/completions with "Authorization: Bearer KEY".
var endpoint = provider.Endpoint{
	DefaultName:     "openai",
	DefaultBaseURL:  DefaultBaseURL,
	URL:             func(base, _ string) string { return base + "/chat/completions" },
	AuthHeader:      "Authorization",
	AuthPrefix:      "Bearer ",
	RequestIDHeader: "x-request-id",
}

// New returns the OpenAI-compatible adapter for o (a groq.com base URL sets RequestsPerDay: Groq's
// x-ratelimit-*-requests headers are a daily budget), or an error when the base URL is not an
// absolute http(s) URL.
func New(o provider.Options) (*provider.Adapter, error) {
	base := o.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	o.RequestsPerDay = o.RequestsPerDay || IsGroq(base)
	return provider.NewAdapter(endpoint, Codec{}, o)
}

// IsGroq reports whether base is Groq's API, whose request rate-limit headers are per day.
func IsGroq(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "groq.com" || strings.HasSuffix(h, ".groq.com")
}

// Codec is the Chat Completions wire format. Encode sends the request as written (max_completion_tokens
// and no sampling parameters for reasoning models, pass-through parameters appended); Decode reads the
// first choice and requires choices[0].message with content (a string, text parts, or null beside
// tool_calls, a refusal or a content_filter finish); ParseError reads the error shapes of OpenAI and
// the servers compatible with it and classifies them with vocabulary.
type Codec struct{}

// Encode returns the /chat/completions body of req.
func (Codec) Encode(req *provider.Request) ([]byte, error) {
	body, err := provider.EncodeBody(buildRequest(req), nil)
	if err != nil {
		return nil, err
	}
	return appendExtra(body, req), nil
}

// Decode reads a /chat/completions response.
func (Codec) Decode(body []byte) (*provider.Response, error) {
	var cr chatResponse
	if err := provider.DecodeObject(body, &cr); err != nil {
		return nil, err
	}
	if len(cr.Choices) == 0 {
		why := "response has no choices"
		if cr.Error != nil && cr.Error.Message != "" {
			why += ": " + cr.Error.Message
		}
		return nil, errors.New(why)
	}
	ch := cr.Choices[0]
	if ch.Message == nil {
		return nil, errors.New("choices[0] has no message")
	}
	content, err := contentText(ch.Message.Content)
	if err != nil {
		return nil, err
	}
	tc := bytes.TrimSpace(ch.Message.ToolCalls)
	hasCalls := len(tc) > 0 && !bytes.Equal(tc, []byte("null")) && !bytes.Equal(tc, []byte("[]"))
	if isNull(ch.Message.Content) && !hasCalls && ch.Message.Refusal == "" && ch.FinishReason != "content_filter" {
		return nil, errors.New("choices[0].message has no content, tool_calls or refusal")
	}
	out := &provider.Response{
		Content:      content,
		FinishReason: ch.FinishReason,
		Model:        cr.Model,
		RequestID:    cr.ID,
		Usage: provider.Usage{
			InputTokens:  cr.Usage.PromptTokens,
			OutputTokens: cr.Usage.CompletionTokens,
		},
	}
	if d := cr.Usage.PromptTokensDetails; d != nil {
		out.Usage.CachedTokens = d.CachedTokens
	}
	if d := cr.Usage.CompletionTokensDetails; d != nil {
		out.Usage.ReasoningTokens = d.ReasoningTokens
	}
	if hasCalls {
		out.ToolCalls = json.RawMessage(bytes.Clone(tc))
	}
	return out, nil
}

// isNull reports a missing or null JSON value.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// ParseError reads an error body (see parseError) and classifies it with vocabulary.
func (Codec) ParseError(status int, body []byte) provider.ErrorInfo {
	return vocabulary.Parse(status, body, parseError)
}

// vocabulary is how OpenAI and the servers compatible with it (Azure, Groq, OpenRouter, Together,
// vLLM, DeepSeek, Mistral) word their errors; gateways such as OpenRouter also relay the upstream
// Anthropic and Gemini wording, which is included.
var vocabulary = provider.Vocabulary{
	Overloaded: provider.Terms{Tokens: []string{"overloaded_error"}, Phrases: []string{"model is overloaded"}},
	// Deliberately not the word "billing": insufficient_quota and ordinary 429s both say "check
	// your plan and billing details".
	Quota: provider.Terms{
		Tokens: []string{"insufficient_quota", "enforced_spend_limit_reached", "billing_hard_limit_reached",
			"billing_not_active", "access_terminated"},
		Phrases: []string{"insufficient credits", "credit balance is too low"}, // OpenRouter 402, relayed Anthropic
		Pattern: provider.LimitZero,                                            // "Limit 0, Used 0"
	},
	// "Request too large for gpt-4o ... on tokens per min (TPM): Limit 30000, Requested 36000":
	// retrying can never succeed on this lane.
	TooLargeRate: provider.Terms{Phrases: []string{"request too large"}},
	Auth: provider.Terms{Tokens: []string{"invalid_api_key", "authentication_error"},
		Phrases: []string{"invalid api key", "incorrect api key"}},
	ContextLength: provider.Terms{
		Tokens: []string{"context_length_exceeded", "string_above_max_length"},
		Phrases: []string{
			"maximum context length",                                           // OpenAI, vLLM, DeepSeek, Mistral
			"context window",                                                   // various compatible servers
			"reduce the length of the messages",                                // OpenAI, Groq
			"input is too long", "too many input tokens", "prompt is too long", // gateways
		},
	},
	ContentFilter: provider.Terms{
		Tokens: []string{"content_filter", "content_policy_violation", "invalid_prompt", "responsibleaipolicyviolation"},
		Phrases: []string{
			"content management policy",        // Azure OpenAI
			"flagged as potentially violating", // OpenAI invalid_prompt
			"input was flagged",                // OpenRouter moderation (403)
		},
	},
}

// chatRequest is the /chat/completions request body.
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []wireMessage   `json:"messages"`
	MaxTokens           int             `json:"max_tokens,omitempty"`
	MaxCompletionTokens int             `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	Stop                []string        `json:"stop,omitempty"`
	ResponseFormat      json.RawMessage `json:"response_format,omitempty"`
	Tools               json.RawMessage `json:"tools,omitempty"`
}

// wireMessage is a chat message as sent; Content is null for an assistant turn that only calls tools.
type wireMessage struct {
	Role       string           `json:"role"`
	Content    *request.Content `json:"content"`
	Name       string           `json:"name,omitempty"`
	ToolCallID string           `json:"tool_call_id,omitempty"`
	ToolCalls  json.RawMessage  `json:"tool_calls,omitempty"`
}

func buildRequest(req *provider.Request) *chatRequest {
	cr := &chatRequest{
		Model:          req.Model,
		Messages:       make([]wireMessage, len(req.Messages)),
		Stop:           req.Stop,
		ResponseFormat: req.ResponseFormat,
		Tools:          req.Tools,
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		wm := wireMessage{Role: m.Role, Content: &m.Content, Name: m.Name, ToolCallID: m.ToolCallID, ToolCalls: m.ToolCalls}
		if len(m.ToolCalls) > 0 && m.Content.Parts == nil && m.Content.Text == "" {
			wm.Content = nil
		}
		cr.Messages[i] = wm
	}
	if req.Reasoning {
		cr.MaxCompletionTokens = req.MaxTokens
	} else {
		cr.MaxTokens = req.MaxTokens
		cr.Temperature = req.Temperature
		cr.TopP = req.TopP
	}
	return cr
}

// samplingOnly are pass-through parameters that reasoning models reject, like temperature and top_p.
var samplingOnly = map[string]bool{"presence_penalty": true, "frequency_penalty": true, "logprobs": true,
	"top_logprobs": true, "logit_bias": true}

// appendExtra adds the request's pass-through parameters to the encoded body, in sorted order (their
// names never clash with chatRequest's fields: the reader only lets PassThroughFields through).
func appendExtra(body []byte, req *provider.Request) []byte {
	if len(req.Extra) == 0 {
		return body
	}
	body = body[:len(body)-1] // the closing brace
	for _, k := range slices.Sorted(maps.Keys(req.Extra)) {
		if req.Reasoning && samplingOnly[k] {
			continue
		}
		body = append(body, ',')
		body = strconv.AppendQuote(body, k)
		body = append(body, ':')
		body = append(body, req.Extra[k]...)
	}
	return append(body, '}')
}

// chatResponse is the part of a /chat/completions response the adapter reads.
type chatResponse struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Message *struct {
			Content   json.RawMessage `json:"content"`
			ToolCalls json.RawMessage `json:"tool_calls"`
			Refusal   string          `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails *struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	} `json:"usage"`
	Error *errorObject `json:"error"` // some gateways (OpenRouter) answer 200 with an error
}

// contentText reads a message content: a string, null, or an array of text parts (joined).
func contentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var c request.Content
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("decode message content: %w", err)
	}
	if c.Parts == nil {
		return c.Text, nil
	}
	var b strings.Builder
	for _, p := range c.Parts {
		if p.Type == "text" || p.Type == "output_text" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}

// errorObject is the "error" member of an OpenAI error body. Code is a string, a number or null
// depending on the server; Param is ignored.
type errorObject struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// parseError reads an OpenAI-style error body: {"error":{"message","type","code"}}, plus the shapes
// compatible servers send ({"error":"text"}, {"message","type","code"} at top level as vLLM does,
// {"detail":"text"}). A "try again in 264ms" in the message becomes RetryAfter.
func parseError(body []byte) provider.ErrorInfo {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &env) != nil {
		return provider.ErrorInfo{}
	}
	var info provider.ErrorInfo
	var obj errorObject
	var text string
	switch {
	case len(env.Error) > 0 && json.Unmarshal(env.Error, &obj) == nil:
		info = provider.ErrorInfo{Type: obj.Type, Code: scalarString(obj.Code), Message: obj.Message}
	case len(env.Error) > 0 && json.Unmarshal(env.Error, &text) == nil:
		info.Message = text
	case env.Message != "":
		info = provider.ErrorInfo{Type: env.Type, Code: scalarString(env.Code), Message: env.Message}
	case len(env.Detail) > 0:
		if json.Unmarshal(env.Detail, &text) == nil {
			info.Message = text
		} else {
			info.Message = string(env.Detail)
		}
	}
	info.RetryAfter = provider.RetryDelayFromText(info.Message)
	return info
}

// scalarString renders a JSON string or number as text; null and anything else is "".
func scalarString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
