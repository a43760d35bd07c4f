package request

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// canonicalVersion changes whenever the canonical form does, so old hashes stop matching on purpose.
const canonicalVersion = 1

type canonicalRequest struct {
	V              int                `json:"v"`
	Model          string             `json:"model,omitempty"`
	Messages       []canonicalMessage `json:"messages"`
	MaxTokens      int                `json:"max_tokens,omitempty"`
	Temperature    *float64           `json:"temperature,omitempty"`
	TopP           *float64           `json:"top_p,omitempty"`
	Stop           []string           `json:"stop,omitempty"`
	ResponseFormat any                `json:"response_format,omitempty"`
	Tools          any                `json:"tools,omitempty"`
	Extra          map[string]any     `json:"extra,omitempty"` // keys sorted by encoding/json
}

type canonicalMessage struct {
	Role       string `json:"role"`
	Content    any    `json:"content"` // a string, or the parts normalised
	Name       string `json:"name,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	ToolCalls  any    `json:"tool_calls,omitempty"`
}

// Canonical returns the request's canonical form: compact JSON with a fixed field order and sorted
// object keys, holding everything that decides the model's answer (pinned model, messages, max_tokens,
// temperature, top_p, stop, response_format, tools, the pass-through parameters) and nothing else (not the id, line, shape,
// category hint or metadata). Equal requests read from any of the three shapes have equal canonical forms.
func (r *Request) Canonical() []byte {
	c := canonicalRequest{
		V:              canonicalVersion,
		Model:          r.Model,
		Messages:       make([]canonicalMessage, len(r.Messages)),
		MaxTokens:      r.MaxTokens,
		Temperature:    r.Temperature,
		TopP:           r.TopP,
		Stop:           r.Stop,
		ResponseFormat: normalizeJSON(r.ResponseFormat),
		Tools:          normalizeJSON(r.Tools),
	}
	if len(r.Extra) > 0 {
		c.Extra = make(map[string]any, len(r.Extra))
		for k, v := range r.Extra {
			c.Extra[k] = normalizeJSON(v)
		}
	}
	for i, m := range r.Messages {
		cm := canonicalMessage{Role: m.Role, Name: m.Name, ToolCallID: m.ToolCallID, ToolCalls: normalizeJSON(m.ToolCalls)}
		if m.Content.Parts == nil {
			cm.Content = m.Content.Text
		} else {
			parts := make([]any, len(m.Content.Parts))
			for j, p := range m.Content.Parts {
				if p.Raw != nil {
					parts[j] = normalizeJSON(p.Raw)
				} else {
					parts[j] = map[string]any{"type": p.Type, "text": p.Text}
				}
			}
			cm.Content = parts
		}
		c.Messages[i] = cm
	}
	var b bytes.Buffer
	b.Grow(r.sizeHint()) // one allocation even for a huge prompt
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep <, > and & as written: shorter, and the hash never depends on it
	if err := enc.Encode(c); err != nil {
		// Every value above is a string, number or a value decoded from JSON, which always re-encodes.
		panic(fmt.Sprintf("request: encode canonical form: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// sizeHint estimates the length of the canonical form: the text it holds plus room for the JSON around it.
func (r *Request) sizeHint() int {
	n := 256 + len(r.ResponseFormat) + len(r.Tools)
	for _, m := range r.Messages {
		n += 64 + len(m.Content.Text) + len(m.ToolCalls)
		for _, p := range m.Content.Parts {
			n += len(p.Raw) + len(p.Text)
		}
	}
	return n + n/16 // escapes grow the text a little
}

// computeHash returns the hex sha256 of the canonical form: the request_hash of DESIGN §3.
func (r *Request) computeHash() string {
	sum := sha256.Sum256(r.Canonical())
	return hex.EncodeToString(sum[:])
}

// normalizeJSON decodes raw so that re-encoding sorts object keys and drops insignificant whitespace;
// numbers stay exactly as written. Raw JSON that does not decode is kept as a string, so the
// canonical form stays deterministic even for hand-built requests.
func normalizeJSON(raw json.RawMessage) any {
	if raw == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return string(raw)
	}
	return v
}

// Text returns the text of all messages, in order, separated by blank lines; non-text parts are left out.
// Analysers use it to judge a request's content.
func (r *Request) Text() string {
	var b strings.Builder
	for _, m := range r.Messages {
		s := m.Content.String()
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(s)
	}
	return b.String()
}
