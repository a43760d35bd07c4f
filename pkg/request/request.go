// Package request reads prompt files (JSONL in three shapes) into neutral Requests and computes each
// request's canonical form and hash.
package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Shape is the input line format a request was read from.
type Shape int

// The three accepted input shapes (DESIGN §2).
const (
	ShapeBatch  Shape = iota + 1 // OpenAI Batch API line: custom_id, method, url, body
	ShapeChat                    // {"id","messages",...}
	ShapePrompt                  // {"id","prompt","system",...}
)

// Request is one prompt of the batch, independent of its input shape.
type Request struct {
	ID   string // custom_id / id; "line-N" when absent
	Line int    // 1-based line number in the input file
	// Offset is the byte offset of the line's start in the input (Reader sets it): a Rereader reads the
	// request again from there, so a caller need not keep it in memory.
	Offset int64
	Shape  Shape

	Model          string    // model pinned by the request itself; "" = let the selector choose
	Messages       []Message // at least one
	MaxTokens      int       // 0 = not given
	Temperature    *float64
	TopP           *float64
	Stop           []string        // a single string stop becomes a one-element slice
	ResponseFormat json.RawMessage // passed through untouched
	Tools          json.RawMessage // passed through untouched
	Category       string          // hint: tiny|small|large|reasoning ("" = let the analyser decide)
	Metadata       json.RawMessage // copied to the result untouched
	// Extra holds the PassThroughFields the line gave (seed, tool_choice, …), raw, by name; nil when none.
	Extra map[string]json.RawMessage

	Hash string // request_hash: hex sha256 of the canonical request
}

// Message is one chat message. Content is a plain string or a list of parts.
type Message struct {
	Role       string          `json:"role"` // system | developer | user | assistant | tool
	Content    Content         `json:"content"`
	Name       string          `json:"name,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
	ToolCalls  json.RawMessage `json:"tool_calls,omitempty"`
}

// Content is a message body: either plain Text, or Parts when the input used the array form.
type Content struct {
	Text  string
	Parts []Part // nil when the content was a plain string
}

// Part is one element of an array content. Non-text parts (images, audio) are kept raw for pass-through.
type Part struct {
	Type string          `json:"type"`
	Text string          `json:"text,omitempty"`
	Raw  json.RawMessage `json:"-"` // the part exactly as read
}

// String returns the text of the content: Text, or the text parts joined by newlines.
func (c Content) String() string {
	if c.Parts == nil {
		return c.Text
	}
	var b strings.Builder
	for i, p := range c.Parts {
		if p.Type != "text" && p.Type != "input_text" {
			continue
		}
		if i > 0 && b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String()
}

// UnmarshalJSON accepts a string, null, or an array of parts.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*c = Content{}
		return nil
	case b[0] == '"':
		c.Parts = nil
		return json.Unmarshal(b, &c.Text)
	case b[0] == '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			return err
		}
		c.Text = ""
		c.Parts = make([]Part, len(raws))
		for i, r := range raws {
			if err := json.Unmarshal(r, &c.Parts[i]); err != nil {
				return fmt.Errorf("content part %d: %w", i, err)
			}
			if c.Parts[i].Type == "" {
				return fmt.Errorf("content part %d has no type", i)
			}
			c.Parts[i].Raw = r
		}
		return nil
	}
	return fmt.Errorf("content must be a string or an array of parts")
}

// MarshalJSON writes Text as a string, or Parts as the array they were read as.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Parts == nil {
		return json.Marshal(c.Text)
	}
	raws := make([]json.RawMessage, len(c.Parts))
	for i, p := range c.Parts {
		if p.Raw != nil {
			raws[i] = p.Raw
			continue
		}
		r, err := json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{p.Type, p.Text})
		if err != nil {
			return nil, err
		}
		raws[i] = r
	}
	return json.Marshal(raws)
}
