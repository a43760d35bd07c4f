// Package openai is the provider adapter for the OpenAI Chat Completions API and the many APIs
// compatible with it (Groq, OpenRouter, Together, DeepSeek, vLLM, Ollama, ...): one
// POST {base_url}/chat/completions per Complete call.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
)

// DefaultBaseURL is used when Options.BaseURL is empty. Like the vendor SDKs, it includes the
// API version; the adapter appends /chat/completions.
const DefaultBaseURL = "https://api.openai.com/v1"

// Options configures a Client.
type Options struct {
	Name    string       // provider name from providers.yaml, used in errors; "openai" when empty
	BaseURL string       // e.g. https://api.openai.com/v1; DefaultBaseURL when empty
	APIKey  string       // sent as "Authorization: Bearer KEY"; no header when empty (Ollama, vLLM)
	Client  *http.Client // shared by all requests of the provider; http.DefaultClient when nil
	Headers map[string]string
	Now     func() time.Time // stamps RateLimits; time.Now when nil
	// RequestsPerDay marks the x-ratelimit-*-requests headers as a daily budget (Groq).
	RequestsPerDay bool
}

// Client is an OpenAI-compatible provider. It is safe for concurrent use.
type Client struct {
	name   string
	url    string
	key    string
	client *http.Client
	header http.Header
	now    func() time.Time
	daily  bool
}

var _ provider.Provider = (*Client)(nil)

// New returns a Client for o, or an error when the base URL is not an absolute http(s) URL.
func New(o Options) (*Client, error) {
	name := o.Name
	if name == "" {
		name = "openai"
	}
	base, err := provider.NormalizeBaseURL(o.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	h := provider.NewHeader(o.Headers)
	if o.APIKey != "" {
		h.Set("Authorization", "Bearer "+o.APIKey)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Client{name: name, url: base + "/chat/completions", key: o.APIKey, client: o.Client,
		header: h, now: now, daily: o.RequestsPerDay}, nil
}

// Name returns the provider name.
func (c *Client) Name() string { return c.name }

// Complete sends req to /chat/completions (one attempt) and returns the first choice. Errors are
// *provider.APIError (see provider.Call.Do); a 2xx body without choices is Malformed.
func (c *Client) Complete(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	body, err := json.Marshal(buildRequest(req))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: encode request: %w", c.name, req.Model, err)
	}
	body = appendExtra(body, req)
	call := &provider.Call{Provider: c.name, Model: req.Model, URL: c.url, Header: c.header, Body: body,
		Secret: c.key, ParseError: ParseError, RequestsPerDay: c.daily}
	res, err := call.Do(ctx, c.client, c.now)
	if err != nil {
		return nil, err
	}
	var cr chatResponse
	if err := call.Decode(res, &cr); err != nil {
		return nil, err
	}
	out, err := fromChat(&cr, req.Model)
	if err != nil {
		return nil, call.MalformedError(res, err)
	}
	out.Limits = res.Limits
	if id := res.Header.Get("x-request-id"); id != "" {
		out.RequestID = id
	}
	return out, nil
}

// fromChat turns a decoded /chat/completions body into a Response (RequestID = the body's id); model
// stands in when the body names none. An error means the body cannot be used (no choices).
func fromChat(cr *chatResponse, model string) (*provider.Response, error) {
	if len(cr.Choices) == 0 {
		why := "response has no choices"
		if cr.Error != nil && cr.Error.Message != "" {
			why += ": " + cr.Error.Message
		}
		return nil, fmt.Errorf("%s", why)
	}
	ch := cr.Choices[0]
	content, err := contentText(ch.Message.Content)
	if err != nil {
		return nil, err
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
	if out.Model == "" {
		out.Model = model
	}
	if d := cr.Usage.PromptTokensDetails; d != nil {
		out.Usage.CachedTokens = d.CachedTokens
	}
	if d := cr.Usage.CompletionTokensDetails; d != nil {
		out.Usage.ReasoningTokens = d.ReasoningTokens
	}
	if tc := bytes.TrimSpace(ch.Message.ToolCalls); len(tc) > 0 && !bytes.Equal(tc, []byte("null")) && !bytes.Equal(tc, []byte("[]")) {
		out.ToolCalls = json.RawMessage(bytes.Clone(tc))
	}
	return out, nil
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
		Message struct {
			Content   json.RawMessage `json:"content"`
			ToolCalls json.RawMessage `json:"tool_calls"`
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

// ParseError reads an OpenAI-style error body: {"error":{"message","type","code"}}, plus the shapes
// compatible servers send ({"error":"text"}, {"message","type","code"} at top level as vLLM does,
// {"detail":"text"}). A "try again in 264ms" in the message becomes RetryAfter.
func ParseError(_ int, body []byte) provider.ErrorInfo {
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
