// Package gemini is the provider adapter for the Gemini API (Google AI Studio, generativelanguage):
// one POST {base_url}/models/{model}:generateContent per Complete call, translating the neutral
// (OpenAI-shaped) request into contents / systemInstruction / generationConfig / tools and back.
package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
)

// DefaultBaseURL is used when Options.BaseURL is empty. Like the vendor SDKs it includes the API
// version; the adapter appends /models/{model}:generateContent.
const DefaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

// Options configures a Client.
type Options struct {
	Name    string       // provider name from providers.yaml, used in errors; "gemini" when empty
	BaseURL string       // e.g. https://generativelanguage.googleapis.com/v1beta; DefaultBaseURL when empty
	APIKey  string       // sent as x-goog-api-key (never in the URL); omitted when empty
	Client  *http.Client // shared by all requests of the provider; http.DefaultClient when nil
	Headers map[string]string
	Now     func() time.Time // stamps RateLimits; time.Now when nil
}

// Client is a Gemini API provider. It is safe for concurrent use.
type Client struct {
	name   string
	base   string
	key    string
	client *http.Client
	header http.Header
	now    func() time.Time
}

var _ provider.Provider = (*Client)(nil)

// New returns a Client for o, or an error when the base URL is not an absolute http(s) URL.
func New(o Options) (*Client, error) {
	name := o.Name
	if name == "" {
		name = "gemini"
	}
	base, err := provider.NormalizeBaseURL(o.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	h := provider.NewHeader(o.Headers)
	if o.APIKey != "" {
		h.Set("x-goog-api-key", o.APIKey)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Client{name: name, base: base, key: o.APIKey, client: o.Client, header: h, now: now}, nil
}

// Name returns the provider name.
func (c *Client) Name() string { return c.name }

// endpoint returns the generateContent URL of a model ("gemini-2.5-flash", or a resource name such
// as "models/gemini-2.5-flash" or "tunedModels/x").
func (c *Client) endpoint(model string) string {
	if !strings.Contains(model, "/") {
		model = "models/" + model
	}
	segs := strings.Split(model, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.base + "/" + strings.Join(segs, "/") + ":generateContent"
}

// Complete sends req to :generateContent (one attempt). System and developer messages become
// systemInstruction; assistant turns are role "model"; tool results become functionResponse parts;
// max_tokens, temperature, top_p and stop go into generationConfig; a json_object or json_schema
// response_format sets responseMimeType application/json (and responseJsonSchema for json_schema);
// OpenAI function tools become functionDeclarations (parametersJsonSchema) and tool_choice becomes
// toolConfig; seed and the presence and frequency penalties go into generationConfig, the other
// pass-through parameters are ignored. Text parts of the first
// candidate (thoughts excluded) are joined into Content. Usage.OutputTokens includes thinking tokens
// (billed as output, as OpenAI's completion_tokens does); ReasoningTokens is thoughtsTokenCount. A
// prompt blocked before generation is a Response with FinishReason content_filter. Errors are
// *provider.APIError; a 429's google.rpc.RetryInfo sets RetryAfter.
func (c *Client) Complete(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	gr, err := buildRequest(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.name, req.Model, err)
	}
	body, err := json.Marshal(gr)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: encode request: %w", c.name, req.Model, err)
	}
	call := &provider.Call{Provider: c.name, Model: req.Model, URL: c.endpoint(req.Model), Header: c.header,
		Body: body, Secret: c.key, ParseError: ParseError}
	res, err := call.Do(ctx, c.client, c.now)
	if err != nil {
		return nil, err
	}
	var r generateResponse
	if err := call.Decode(res, &r); err != nil {
		return nil, err
	}
	out, err := fromGenerate(&r, req.Model)
	if err != nil {
		return nil, call.MalformedError(res, err)
	}
	out.Limits = res.Limits
	return out, nil
}

// fromGenerate turns a decoded :generateContent body into a Response; model stands in when the body
// names none. An error means the body cannot be used (no candidates and no block reason).
func fromGenerate(r *generateResponse, model string) (*provider.Response, error) {
	out := &provider.Response{
		Model:     r.ModelVersion,
		RequestID: r.ResponseID,
		Usage: provider.Usage{
			InputTokens:     r.UsageMetadata.PromptTokenCount,
			OutputTokens:    r.UsageMetadata.CandidatesTokenCount + r.UsageMetadata.ThoughtsTokenCount,
			CachedTokens:    r.UsageMetadata.CachedContentTokenCount,
			ReasoningTokens: r.UsageMetadata.ThoughtsTokenCount,
		},
	}
	if out.Model == "" {
		out.Model = model
	}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			out.FinishReason = "content_filter"
			return out, nil
		}
		return nil, fmt.Errorf("response has no candidates")
	}
	cand := r.Candidates[0]
	var text strings.Builder
	var calls []provider.ToolCall
	for _, p := range cand.Content.Parts {
		switch {
		case p.FunctionCall != nil:
			id := p.FunctionCall.ID
			if id == "" {
				id = fmt.Sprintf("call_%d", len(calls))
			}
			calls = append(calls, provider.NewToolCall(id, p.FunctionCall.Name, p.FunctionCall.Args))
		case !p.Thought:
			text.WriteString(p.Text)
		}
	}
	out.Content = text.String()
	out.FinishReason = finishReason(cand.FinishReason)
	if len(calls) > 0 {
		raw, err := json.Marshal(calls)
		if err != nil {
			return nil, fmt.Errorf("encode tool calls: %w", err)
		}
		out.ToolCalls = raw
		if out.FinishReason == "stop" {
			out.FinishReason = "tool_calls"
		}
	}
	return out, nil
}

// finishReason maps a Gemini finishReason to the neutral one; unknown values pass through.
func finishReason(s string) string {
	switch s {
	case "STOP":
		return "stop"
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return "content_filter"
	}
	return s
}

// toolCall is an OpenAI-shaped tool call.
// generateRequest is the :generateContent request body.
type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
	Tools             []tool            `json:"tools,omitempty"`
	ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
}

// toolConfig is Gemini's tool_choice.
type toolConfig struct {
	FunctionCallingConfig struct {
		Mode                 string   `json:"mode"` // AUTO | ANY | NONE
		AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
	} `json:"functionCallingConfig"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []any  `json:"parts"`
}

type textPart struct {
	Text string `json:"text"`
}

type inlineDataPart struct {
	InlineData struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	} `json:"inlineData"`
}

type fileDataPart struct {
	FileData struct {
		FileURI string `json:"fileUri"`
	} `json:"fileData"`
}

type functionCallPart struct {
	FunctionCall struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
}

type functionResponsePart struct {
	FunctionResponse struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	} `json:"functionResponse"`
}

type generationConfig struct {
	MaxOutputTokens    int             `json:"maxOutputTokens,omitempty"`
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"topP,omitempty"`
	StopSequences      []string        `json:"stopSequences,omitempty"`
	ResponseMimeType   string          `json:"responseMimeType,omitempty"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
	Seed               json.RawMessage `json:"seed,omitempty"`
	PresencePenalty    json.RawMessage `json:"presencePenalty,omitempty"`
	FrequencyPenalty   json.RawMessage `json:"frequencyPenalty,omitempty"`
}

type tool struct {
	FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
}

type functionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description,omitempty"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

func buildRequest(req *provider.Request) (*generateRequest, error) {
	gr := &generateRequest{}
	var system []any
	toolNames := map[string]string{} // tool_call_id -> function name, for functionResponse
	for i := range req.Messages {
		m := &req.Messages[i]
		var role string
		var parts []any
		switch m.Role {
		case "system", "developer":
			system = append(system, textParts(m.Content)...)
			continue
		case "user":
			role, parts = "user", textParts(m.Content)
		case "assistant":
			role, parts = "model", textParts(m.Content)
			calls, err := functionCalls(m.ToolCalls, toolNames)
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
			parts = append(parts, calls...)
		case "tool":
			name := toolNames[m.ToolCallID]
			if name == "" {
				name = m.Name
			}
			var fr functionResponsePart
			fr.FunctionResponse.Name = name
			fr.FunctionResponse.Response = toolResponse(m.Content.String())
			role, parts = "user", []any{fr}
		default:
			return nil, fmt.Errorf("message %d: unsupported role %q", i, m.Role)
		}
		if len(parts) == 0 {
			continue
		}
		if n := len(gr.Contents); n > 0 && gr.Contents[n-1].Role == role {
			gr.Contents[n-1].Parts = append(gr.Contents[n-1].Parts, parts...)
			continue
		}
		gr.Contents = append(gr.Contents, content{Role: role, Parts: parts})
	}
	if len(system) > 0 {
		gr.SystemInstruction = &content{Parts: system}
	}

	gc := generationConfig{MaxOutputTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, StopSequences: req.Stop}
	if len(bytes.TrimSpace(req.ResponseFormat)) > 0 {
		var rf struct {
			Type       string `json:"type"`
			JSONSchema *struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"json_schema"`
		}
		if err := json.Unmarshal(req.ResponseFormat, &rf); err != nil {
			return nil, fmt.Errorf("decode response_format: %w", err)
		}
		switch rf.Type {
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			gc.ResponseMimeType = "application/json"
			if rf.JSONSchema != nil {
				gc.ResponseJSONSchema = rf.JSONSchema.Schema
			}
		}
	}
	gc.Seed, gc.PresencePenalty, gc.FrequencyPenalty = req.Extra["seed"], req.Extra["presence_penalty"], req.Extra["frequency_penalty"]
	if gc.MaxOutputTokens > 0 || gc.Temperature != nil || gc.TopP != nil || len(gc.StopSequences) > 0 ||
		gc.ResponseMimeType != "" || gc.Seed != nil || gc.PresencePenalty != nil || gc.FrequencyPenalty != nil {
		gr.GenerationConfig = &gc
	}
	decls, err := translateTools(req.Tools)
	if err != nil {
		return nil, err
	}
	if len(decls) > 0 {
		gr.Tools = []tool{{FunctionDeclarations: decls}}
		tc, ok, err := provider.ParseToolChoice(req.Extra)
		if err != nil {
			return nil, err
		}
		if ok {
			gr.ToolConfig = &toolConfig{}
			fc := &gr.ToolConfig.FunctionCallingConfig
			fc.Mode = map[string]string{"auto": "AUTO", "none": "NONE", "required": "ANY"}[tc.Mode]
			if tc.Name != "" {
				fc.AllowedFunctionNames = []string{tc.Name}
			}
		}
	}
	return gr, nil
}

// textParts turns a message content into Gemini parts: text (empty dropped), data: image URLs as
// inlineData, other image URLs as fileData; unknown parts are dropped (Gemini rejects foreign fields).
func textParts(c request.Content) []any {
	if c.Parts == nil {
		if c.Text == "" {
			return nil
		}
		return []any{textPart{Text: c.Text}}
	}
	var out []any
	for _, p := range c.Parts {
		switch p.Type {
		case "text", "input_text":
			if p.Text != "" {
				out = append(out, textPart{Text: p.Text})
			}
		case "image_url":
			var ip struct {
				ImageURL struct {
					URL string `json:"url"`
				} `json:"image_url"`
			}
			if json.Unmarshal(p.Raw, &ip) != nil || ip.ImageURL.URL == "" {
				continue
			}
			u := ip.ImageURL.URL
			if rest, ok := strings.CutPrefix(u, "data:"); ok {
				meta, data, ok := strings.Cut(rest, ",")
				mime, isB64 := strings.CutSuffix(meta, ";base64")
				if ok && isB64 {
					var d inlineDataPart
					d.InlineData.MimeType, d.InlineData.Data = mime, data
					out = append(out, d)
				}
				continue
			}
			var f fileDataPart
			f.FileData.FileURI = u
			out = append(out, f)
		}
	}
	return out
}

// functionCalls converts OpenAI tool_calls into functionCall parts, recording id -> name.
func functionCalls(raw json.RawMessage, names map[string]string) ([]any, error) {
	calls, err := provider.DecodeToolCalls(raw)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(calls))
	for _, tc := range calls {
		names[tc.ID] = tc.Function.Name
		var p functionCallPart
		p.FunctionCall.Name, p.FunctionCall.Args = tc.Function.Name, json.RawMessage(tc.Function.Arguments)
		out = append(out, p)
	}
	return out, nil
}

// toolResponse makes a functionResponse.response object: the tool output itself when it is a JSON
// object, else {"result": output}.
func toolResponse(s string) json.RawMessage {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(map[string]string{"result": s}) // a string map always encodes
	return b
}

// translateTools turns OpenAI function tools into functionDeclarations; other tools are dropped.
func translateTools(raw json.RawMessage) ([]functionDeclaration, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	var tools []struct {
		Type     string `json:"type"`
		Function *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	}
	if err := json.Unmarshal(t, &tools); err != nil {
		return nil, fmt.Errorf("decode tools: %w", err)
	}
	var out []functionDeclaration
	for _, tl := range tools {
		if tl.Type != "function" || tl.Function == nil {
			continue
		}
		out = append(out, functionDeclaration{Name: tl.Function.Name, Description: tl.Function.Description,
			ParametersJSONSchema: tl.Function.Parameters})
	}
	return out, nil
}

// generateResponse is the part of a :generateContent response the adapter reads.
type generateResponse struct {
	Candidates []struct {
		Content struct {
			Parts []struct {
				Text         string `json:"text"`
				Thought      bool   `json:"thought"`
				FunctionCall *struct {
					ID   string          `json:"id"`
					Name string          `json:"name"`
					Args json.RawMessage `json:"args"`
				} `json:"functionCall"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata struct {
		PromptTokenCount        int `json:"promptTokenCount"`
		CandidatesTokenCount    int `json:"candidatesTokenCount"`
		ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
		CachedContentTokenCount int `json:"cachedContentTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
	ResponseID   string `json:"responseId"`
}

// errorBody is a google.rpc.Status error: {"error":{"code","message","status","details":[...]}}.
type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			Violations []struct {
				QuotaID string `json:"quotaId"`
			} `json:"violations"`
		} `json:"details"`
	} `json:"error"`
}

// ParseError reads a Gemini error body (also in the [{"error":...}] array form): Type is
// error.status (RESOURCE_EXHAUSTED, INVALID_ARGUMENT, UNAVAILABLE, ...); Code is the first
// google.rpc.ErrorInfo reason (API_KEY_INVALID) or else a google.rpc.QuotaFailure quotaId, a per-day
// one when any is violated (GenerateRequestsPerDayPerProjectPerModel-FreeTier), else the first; RetryAfter is the RetryInfo retryDelay or a
// "Please retry in 7.5s" in the message. The message is kept whole, so "limit: 0" (a quota that
// will never admit the request) stays visible to the classifier.
func ParseError(_ int, body []byte) provider.ErrorInfo {
	var eb errorBody
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var arr []errorBody
		if json.Unmarshal(b, &arr) != nil || len(arr) == 0 {
			return provider.ErrorInfo{}
		}
		eb = arr[0]
	} else if json.Unmarshal(b, &eb) != nil {
		return provider.ErrorInfo{}
	}
	info := provider.ErrorInfo{Type: eb.Error.Status, Message: eb.Error.Message, RetryAfter: provider.RetryDelayFromBody(b)}
	for _, d := range eb.Error.Details {
		if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") && d.Reason != "" {
			info.Code = d.Reason
			return info
		}
	}
	for _, d := range eb.Error.Details {
		if !strings.HasSuffix(d.Type, "google.rpc.QuotaFailure") {
			continue
		}
		for _, v := range d.Violations {
			if info.Code == "" || strings.Contains(v.QuotaID, "PerDay") {
				info.Code = v.QuotaID
			}
			if strings.Contains(v.QuotaID, "PerDay") {
				return info
			}
		}
	}
	return info
}
