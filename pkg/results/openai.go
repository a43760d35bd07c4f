package results

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"
)

// oaiLine is one line of an OpenAI Batch API output file, plus "request_hash".
type oaiLine struct {
	ID          string       `json:"id"`
	CustomID    string       `json:"custom_id"`
	Response    *oaiResponse `json:"response"`
	Error       *oaiError    `json:"error"`
	RequestHash string       `json:"request_hash"`
}

type oaiResponse struct {
	StatusCode int    `json:"status_code"`
	RequestID  string `json:"request_id"`
	Body       any    `json:"body"`
}

type oaiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// oaiCompletion is a chat.completion object.
type oaiCompletion struct {
	ID      string      `json:"id"`
	Object  string      `json:"object"`
	Created int64       `json:"created"`
	Model   string      `json:"model"`
	Choices []oaiChoice `json:"choices"`
	Usage   *oaiUsage   `json:"usage,omitempty"`
}

type oaiChoice struct {
	Index        int             `json:"index"`
	Message      oaiMessage      `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type oaiMessage struct {
	Role      string          `json:"role"`
	Content   *string         `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls,omitempty"`
}

type oaiUsage struct {
	PromptTokens            int                  `json:"prompt_tokens"`
	CompletionTokens        int                  `json:"completion_tokens"`
	TotalTokens             int                  `json:"total_tokens"`
	PromptTokensDetails     *oaiPromptDetails    `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *oaiCompletionDetail `json:"completion_tokens_details,omitempty"`
}

type oaiPromptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type oaiCompletionDetail struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// oaiErrorBody is the body of an HTTP error response in the OpenAI shape.
type oaiErrorBody struct {
	Error struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Param   json.RawMessage `json:"param"`
		Code    json.RawMessage `json:"code"`
	} `json:"error"`
}

var jsonNull = json.RawMessage("null")

// lineID derives the deterministic suffix of the "batch_req_" and "chatcmpl-" ids from the custom_id
// and request_hash, so rewriting a result (compaction, a re-run) reproduces the same id.
func lineID(customID, requestHash string) string {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(customID)))) // unambiguous split
	h.Write([]byte(customID))
	h.Write([]byte(requestHash))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// toOpenAI converts r (already validated) into an OpenAI Batch output line; created stamps the
// chat.completion object.
//
// Mapping: an ok result is status_code 200 with a chat.completion body; an error that carries an
// HTTP error status (not 2xx) is that status_code with an {"error":{...}} body, as OpenAI reports
// failed requests; any other error (no response, a malformed 2xx, the budget) is "response":null with
// a top-level {"code","message"} error, code being the classifier's error type.
func toOpenAI(r *Result, created time.Time) *oaiLine {
	suffix := lineID(r.CustomID, r.RequestHash)
	l := &oaiLine{ID: "batch_req_" + suffix, CustomID: r.CustomID, RequestHash: r.RequestHash}
	if r.Status == StatusOK {
		msg := oaiMessage{Role: "assistant", ToolCalls: r.ToolCalls}
		if r.Content != "" || len(r.ToolCalls) == 0 {
			content := r.Content
			msg.Content = &content
		}
		c := &oaiCompletion{
			ID:      "chatcmpl-" + suffix,
			Object:  "chat.completion",
			Created: created.Unix(),
			Model:   r.Model,
			Choices: []oaiChoice{{Index: 0, Message: msg, Logprobs: jsonNull, FinishReason: r.FinishReason}},
		}
		if u := r.Usage; u != nil {
			c.Usage = &oaiUsage{
				PromptTokens:     u.InputTokens,
				CompletionTokens: u.OutputTokens,
				TotalTokens:      u.InputTokens + u.OutputTokens,
			}
			if u.CachedTokens > 0 {
				c.Usage.PromptTokensDetails = &oaiPromptDetails{CachedTokens: u.CachedTokens}
			}
			if u.ReasoningTokens > 0 {
				c.Usage.CompletionTokensDetails = &oaiCompletionDetail{ReasoningTokens: u.ReasoningTokens}
			}
		}
		l.Response = &oaiResponse{StatusCode: 200, RequestID: r.RequestID, Body: c}
		return l
	}
	e := r.Error
	if e == nil {
		e = &ErrorInfo{Type: "unknown", Message: "unknown error"}
	}
	if e.StatusCode != 0 && (e.StatusCode < 200 || e.StatusCode > 299) {
		var body oaiErrorBody
		body.Error.Message = e.Message
		body.Error.Type = e.Type
		body.Error.Param = jsonNull
		body.Error.Code = jsonNull
		l.Response = &oaiResponse{StatusCode: e.StatusCode, RequestID: r.RequestID, Body: &body}
		return l
	}
	l.Error = &oaiError{Code: e.Type, Message: e.Message}
	return l
}
