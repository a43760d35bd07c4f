package tokens

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/llmbatch/llmbatch/pkg/request"
)

// Chat overhead as OpenAI counts prompt tokens for every chat model since gpt-3.5-turbo-0613
// (the cookbook's num_tokens_from_messages): each message is wrapped in
// <|start|>{role/name}\n{content}<|end|>\n, and the reply is primed with <|start|>assistant<|message|>.
const (
	tokensPerMessage = 3 // on top of the role's and the content's own tokens
	tokensPerName    = 1 // on top of the name's own tokens
	replyPriming     = 3
)

// Image estimates, in tokens, for image parts whose size is not known without fetching them: OpenAI
// bills a low-detail image 85 tokens, and a high-detail one 85 plus 170 per 512-pixel tile, which is
// 765 for a typical 1024×1024 image. Other vendors bill differently; these are estimates.
const (
	imageLowDetail = 85
	imageDefault   = 765
)

// Input returns the prompt tokens a request costs on a model with the given encoding (its config
// encoding field), chat overhead included, and whether that count is exact.
//
// The count is exact (equal to the usage.prompt_tokens OpenAI reports) when the encoding is
// cl100k_base or o200k_base and the request holds only text messages with optional names. It is an
// estimate (exact false) when:
//   - the encoding is anything else, including "" (the o200k_base count is used);
//   - a message content has several parts, or non-text parts (an image is estimated at 765 tokens,
//     85 with detail "low"; audio and files at one token per four bytes of their JSON);
//   - there are tools, tool calls or a response_format other than text: their compact JSON is counted,
//     which is close to, and usually above, what the API renders them as.
//
// Message texts and JSON values are counted through the Calculator's cache. Texts beyond the bounds
// of CountContext are estimated (exact false).
func (c *Calculator) Input(req *request.Request, encoding string) (n int, exact bool) {
	return c.InputContext(context.Background(), req, encoding)
}

// InputContext is Input that stops early once ctx is done, returning an estimate marked inexact
// (the caller checks ctx.Err()); see CountContext.
func (c *Calculator) InputContext(ctx context.Context, req *request.Request, encoding string) (n int, exact bool) {
	id, exact := resolve(encoding)
	add := func(k int, x bool) {
		n += k
		exact = exact && x
	}
	n = replyPriming
	for i := range req.Messages {
		m := &req.Messages[i]
		n += tokensPerMessage
		add(c.cachedCount(ctx, id, m.Role))
		add(c.content(ctx, id, m.Content))
		if m.Name != "" {
			add(c.cachedCount(ctx, id, m.Name))
			n += tokensPerName
		}
		if m.ToolCallID != "" {
			add(c.cachedCount(ctx, id, m.ToolCallID))
			exact = false
		}
		if present(m.ToolCalls) {
			add(c.cachedJSON(ctx, id, m.ToolCalls))
			exact = false
		}
	}
	if present(req.Tools) {
		add(c.cachedJSON(ctx, id, req.Tools))
		exact = false
	}
	if present(req.ResponseFormat) && !plainText(req.ResponseFormat) {
		add(c.cachedJSON(ctx, id, req.ResponseFormat))
		exact = false
	}
	return n, exact
}

// content counts one message content.
func (c *Calculator) content(ctx context.Context, id encodingID, ct request.Content) (int, bool) {
	if ct.Parts == nil {
		return c.cachedCount(ctx, id, ct.Text)
	}
	n, exact := 0, len(ct.Parts) <= 1
	for _, p := range ct.Parts {
		switch p.Type {
		case "text", "input_text":
			k, x := c.cachedCount(ctx, id, p.Text)
			n, exact = n+k, exact && x
		case "image_url", "input_image", "image":
			n, exact = n+imageTokens(p.Raw), false
		default:
			n, exact = n+(len(p.Raw)+3)/4, false
		}
	}
	return n, exact
}

// imageTokens estimates an image part: cheap when it asks for low detail.
func imageTokens(raw json.RawMessage) int {
	var part struct {
		Detail   string `json:"detail"`
		ImageURL struct {
			Detail string `json:"detail"`
		} `json:"image_url"`
	}
	// An image_url given as a plain string does not decode into the struct; that is still an image.
	_ = json.Unmarshal(raw, &part)
	if part.Detail == "low" || part.ImageURL.Detail == "low" {
		return imageLowDetail
	}
	return imageDefault
}

// cachedJSON counts a JSON value in compact form, through the cache (tools and response formats are
// usually the same on every line).
func (c *Calculator) cachedJSON(ctx context.Context, id encodingID, raw json.RawMessage) (int, bool) {
	k := c.cache.keyBytes(id, kindJSON, raw)
	if v, ok := c.cache.get(k); ok {
		return v.n, v.exact
	}
	var buf bytes.Buffer
	text := string(raw)
	if err := json.Compact(&buf, raw); err == nil {
		text = buf.String()
	}
	n, exact := c.count(ctx, id, text)
	if ctx.Err() == nil {
		c.cache.put(k, entry{n: n, exact: exact})
	}
	return n, exact
}

// present reports whether an optional JSON field holds a value.
func present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

// plainText reports whether a response_format is {"type":"text"}, which adds nothing to the prompt.
func plainText(raw json.RawMessage) bool {
	var rf struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(raw, &rf) == nil && rf.Type == "text"
}
