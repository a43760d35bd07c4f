// Package gemini is the provider adapter for the Gemini API (Google AI Studio, generativelanguage):
// one POST {base_url}/models/{model}:generateContent per Complete call, translating the neutral
// (OpenAI-shaped) request into contents / systemInstruction / generationConfig / tools and back.
package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
)

// DefaultBaseURL is used when Options.BaseURL is empty. Like the vendor SDKs it includes the API
// version; the adapter appends /models/{model}:generateContent.
const DefaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

// endpoint is POST {base_url}/models/{model}:generateContent with x-goog-api-key.
var endpoint = provider.Endpoint{
	DefaultName:    "gemini",
	DefaultBaseURL: DefaultBaseURL,
	URL:            modelURL,
	AuthHeader:     "x-goog-api-key",
}

// New returns the Gemini adapter for o (the key goes in x-goog-api-key, never in the URL), or an
// error when the base URL is not an absolute http(s) URL.
func New(o provider.Options) (*provider.Adapter, error) {
	return provider.NewAdapter(endpoint, Codec{}, o)
}

// modelURL returns the generateContent URL of a model ("gemini-2.5-flash", or a resource name such
// as "models/gemini-2.5-flash" or "tunedModels/x").
func modelURL(base, model string) string {
	if !strings.Contains(model, "/") {
		model = "models/" + model
	}
	segs := strings.Split(model, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return base + "/" + strings.Join(segs, "/") + ":generateContent"
}

// Codec is the generateContent wire format.
//
// Encode: system and developer messages become systemInstruction; assistant turns are role "model";
// tool results become functionResponse parts; max_tokens, temperature, top_p and stop go into
// generationConfig; a json_object or json_schema response_format sets responseMimeType
// application/json (and responseJsonSchema for json_schema); OpenAI function tools become
// functionDeclarations (parametersJsonSchema) and tool_choice becomes toolConfig; seed and the
// presence and frequency penalties go into generationConfig, the other pass-through parameters are
// ignored.
//
// Decode requires a first candidate with content parts, or one that finished for a reason other than
// STOP (SAFETY, MAX_TOKENS…), or a prompt blocked before generation (a Response with FinishReason
// content_filter). Text parts (thoughts excluded) are joined into Content. Usage.OutputTokens
// includes thinking tokens (billed as output, as OpenAI's completion_tokens does); ReasoningTokens is
// thoughtsTokenCount.
type Codec struct{}

// Encode returns the :generateContent body of req.
func (Codec) Encode(req *provider.Request) ([]byte, error) {
	return provider.EncodeBody(buildRequest(req))
}

// Decode reads a :generateContent response.
func (Codec) Decode(body []byte) (*provider.Response, error) {
	var r generateResponse
	if err := provider.DecodeObject(body, &r); err != nil {
		return nil, err
	}
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
	if len(r.Candidates) == 0 {
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			out.FinishReason = "content_filter"
			return out, nil
		}
		return nil, errors.New("response has no candidates")
	}
	cand := r.Candidates[0]
	if (cand.Content == nil || len(cand.Content.Parts) == 0) && (cand.FinishReason == "" || cand.FinishReason == "STOP") {
		return nil, errors.New("candidates[0] has no content parts")
	}
	var text strings.Builder
	var calls []provider.ToolCall
	if cand.Content != nil {
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

// ParseError reads an error body (see parseError) and classifies it with vocabulary.
func (Codec) ParseError(status int, body []byte) provider.ErrorInfo {
	return vocabulary.Parse(status, body, parseError)
}

// vocabulary is how the Gemini API words its errors.
var vocabulary = provider.Vocabulary{
	Overloaded: provider.Terms{Phrases: []string{"model is overloaded"}}, // 503 UNAVAILABLE
	// A quota of limit 0 (a free tier the project or region does not have) never admits the request,
	// though Gemini sends it as an ordinary 429 RESOURCE_EXHAUSTED.
	Quota:         provider.Terms{Pattern: provider.LimitZero},
	Auth:          provider.Terms{Tokens: []string{"api_key_invalid", "unauthenticated"}, Phrases: []string{"api key not valid"}},
	Precondition:  provider.Terms{Tokens: []string{"failed_precondition"}},
	ContextLength: provider.Terms{Phrases: []string{"exceeds the maximum number of tokens"}},
	ContentFilter: provider.Terms{Tokens: []string{"safety", "prohibited_content", "blocklist"}},
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
		Content *struct {
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

// parseError reads a Gemini error body (also in the [{"error":...}] array form): Type is
// error.status (RESOURCE_EXHAUSTED, INVALID_ARGUMENT, UNAVAILABLE, ...); Code is the first
// google.rpc.ErrorInfo reason (API_KEY_INVALID) or else a google.rpc.QuotaFailure quotaId, a per-day
// one when any is violated (GenerateRequestsPerDayPerProjectPerModel-FreeTier), else the first; RetryAfter is the RetryInfo retryDelay or a
// "Please retry in 7.5s" in the message. The message is kept whole, so "limit: 0" (a quota that
// will never admit the request) stays visible to the classifier.
func parseError(body []byte) provider.ErrorInfo {
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
