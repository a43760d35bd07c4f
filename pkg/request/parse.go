package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/pkg/model"
)

// BatchURL is the only endpoint an OpenAI Batch line may name: llmbatch runs chat completions.
const BatchURL = "/v1/chat/completions"

// fieldError is a problem with one field of a line; the Reader adds the file and line number.
type fieldError struct {
	field string
	msg   string
	err   error
}

func errField(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// commonFields may appear on a chat or prompt line, or in the body of a Batch line.
var commonFields = append([]string{"model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
	"response_format", "tools", "category", "metadata", "stream", "n"}, PassThroughFields...)

// PassThroughFields are OpenAI chat-completion parameters llmbatch does not interpret: they are kept
// raw in Request.Extra and sent as written to OpenAI-compatible providers. Any other unknown field is
// an error, so that a typo ("temprature") is caught instead of silently dropped.
var PassThroughFields = []string{"seed", "user", "logprobs", "top_logprobs", "presence_penalty",
	"frequency_penalty", "logit_bias", "tool_choice", "parallel_tool_calls", "reasoning_effort",
	"service_tier", "store", "prediction", "verbosity", "web_search_options"}

var (
	chatFields   = fieldSet(append([]string{"id", "messages"}, commonFields...))
	promptFields = fieldSet(append([]string{"id", "prompt", "system"}, commonFields...))
	batchFields  = fieldSet([]string{"custom_id", "method", "url", "body"})
	bodyFields   = fieldSet(append([]string{"messages"}, commonFields...))
	msgFields    = fieldSet([]string{"role", "content", "name", "tool_call_id", "tool_calls"})
)

func fieldSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// object is a decoded JSON object whose values are still raw; prefix locates it in the line
// ("" for the top level, "body." inside a Batch body) so errors name the full field path.
type object struct {
	fields map[string]json.RawMessage
	prefix string
}

// parseLine turns one non-blank line into a Request, or says what is wrong with it.
func parseLine(b []byte, lineNo int) (*Request, *fieldError) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, jsonLineError(err)
	}
	if top == nil {
		return nil, errField("", "line is null, not an object (each line must be one JSON object)")
	}
	o := object{fields: top}
	var ferr *fieldError
	req := &Request{Line: lineNo}
	hasMessages, hasPrompt := o.has("messages"), o.has("prompt")
	switch {
	case o.has("custom_id") || o.has("body") || o.has("url") || o.has("method"):
		req.Shape = ShapeBatch
		ferr = parseBatch(o, req)
	case hasMessages && hasPrompt:
		return nil, errField("prompt", `given together with "messages" (use one of the two)`)
	case hasMessages:
		req.Shape = ShapeChat
		ferr = parseChat(o, req)
	case hasPrompt:
		req.Shape = ShapePrompt
		ferr = parsePrompt(o, req)
	default:
		return nil, errField("messages", `missing (a line needs "messages", "prompt", or "custom_id" with "body" in the OpenAI Batch shape)`)
	}
	if ferr != nil {
		return nil, ferr
	}
	if req.ID == "" {
		req.ID = "line-" + strconv.Itoa(lineNo)
	}
	req.Hash = req.computeHash()
	return req, nil
}

// jsonLineError describes why a line is not a JSON object.
func jsonLineError(err error) *fieldError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &fieldError{msg: fmt.Sprintf("invalid JSON at byte %d: %s (each line must be one complete JSON object)",
			syn.Offset, strings.TrimPrefix(syn.Error(), "json: ")), err: err}
	case errors.As(err, &typ):
		return &fieldError{msg: fmt.Sprintf("line is a JSON %s, not an object (each line must be one JSON object)", typ.Value), err: err}
	}
	return &fieldError{msg: fmt.Sprintf("invalid JSON: %v (each line must be one complete JSON object)", err), err: err}
}

func decodeObject(b []byte, field string) (map[string]json.RawMessage, *fieldError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &fieldError{field: field, msg: "must be a JSON object, got " + describe(b), err: err}
	}
	if m == nil { // the literal null
		return nil, &fieldError{field: field, msg: "must be a JSON object, got null"}
	}
	return m, nil
}

func parseBatch(o object, req *Request) *fieldError {
	if ferr := o.checkUnknown(batchFields, `the OpenAI Batch shape allows custom_id, method, url and body; put request fields inside "body"`); ferr != nil {
		return ferr
	}
	var ferr *fieldError
	if req.ID, ferr = o.id("custom_id"); ferr != nil {
		return ferr
	}
	if m, ok, ferr := o.str("method"); ferr != nil {
		return ferr
	} else if ok && m != "POST" {
		return errField("method", "is %q (the OpenAI Batch shape uses \"POST\")", m)
	}
	if u, ok, ferr := o.str("url"); ferr != nil {
		return ferr
	} else if ok && u != BatchURL {
		return errField("url", "is %q (llmbatch runs chat completions only: use %q)", u, BatchURL)
	}
	raw, ok := o.fields["body"]
	if !ok || isNull(raw) {
		return errField("body", `missing (an OpenAI Batch line carries the request in "body")`)
	}
	fields, ferr := decodeObject(raw, "body")
	if ferr != nil {
		return ferr
	}
	body := object{fields: fields, prefix: "body."}
	if ferr := body.checkUnknown(bodyFields, "llmbatch does not pass it on; remove it"); ferr != nil {
		return ferr
	}
	if req.Messages, ferr = body.messages(); ferr != nil {
		return ferr
	}
	return body.common(req)
}

func parseChat(o object, req *Request) *fieldError {
	if o.has("system") {
		return errField("system", `not allowed with "messages" (make it the first message: {"role":"system","content":"..."})`)
	}
	if ferr := o.checkUnknown(chatFields, "llmbatch does not pass it on; remove it"); ferr != nil {
		return ferr
	}
	var ferr *fieldError
	if req.ID, ferr = o.id("id"); ferr != nil {
		return ferr
	}
	if req.Messages, ferr = o.messages(); ferr != nil {
		return ferr
	}
	return o.common(req)
}

func parsePrompt(o object, req *Request) *fieldError {
	if ferr := o.checkUnknown(promptFields, "llmbatch does not pass it on; remove it"); ferr != nil {
		return ferr
	}
	var ferr *fieldError
	if req.ID, ferr = o.id("id"); ferr != nil {
		return ferr
	}
	prompt, _, ferr := o.str("prompt")
	if ferr != nil {
		return ferr
	}
	if strings.TrimSpace(prompt) == "" {
		return errField("prompt", "is empty (give the text to send)")
	}
	system, _, ferr := o.str("system")
	if ferr != nil {
		return ferr
	}
	if strings.TrimSpace(system) != "" {
		req.Messages = append(req.Messages, Message{Role: "system", Content: Content{Text: system}})
	}
	req.Messages = append(req.Messages, Message{Role: "user", Content: Content{Text: prompt}})
	return o.common(req)
}

// common reads the optional fields every shape shares.
func (o object) common(req *Request) *fieldError {
	m, ok, ferr := o.str("model")
	if ferr != nil {
		return ferr
	}
	if ok && strings.TrimSpace(m) == "" {
		return o.err("model", `is empty (name a model, or leave "model" out to let llmbatch choose)`)
	}
	req.Model = m
	maxTokens, ferr := o.positiveInt("max_tokens")
	if ferr != nil {
		return ferr
	}
	maxCompletion, ferr := o.positiveInt("max_completion_tokens")
	if ferr != nil {
		return ferr
	}
	if maxTokens > 0 && maxCompletion > 0 && maxTokens != maxCompletion {
		return o.err("max_completion_tokens", "is %d but max_tokens is %d (give only one of them)", maxCompletion, maxTokens)
	}
	req.MaxTokens = max(maxTokens, maxCompletion)
	if req.Temperature, ferr = o.number("temperature", 0, 2); ferr != nil {
		return ferr
	}
	if req.TopP, ferr = o.number("top_p", 0, 1); ferr != nil {
		return ferr
	}
	if req.Stop, ferr = o.stop(); ferr != nil {
		return ferr
	}
	if req.ResponseFormat, ferr = o.rawOf("response_format", '{', "an object such as {\"type\":\"json_object\"}"); ferr != nil {
		return ferr
	}
	if req.Tools, ferr = o.rawOf("tools", '[', "an array of tool definitions"); ferr != nil {
		return ferr
	}
	if c, ok, ferr := o.str("category"); ferr != nil {
		return ferr
	} else if ok {
		cat, err := model.ParseCategory(c)
		if err != nil {
			return o.err("category", "%v", err)
		}
		if cat != model.Unknown {
			req.Category = cat.String()
		}
	}
	if raw, ok := o.fields["metadata"]; ok && !isNull(raw) {
		req.Metadata = append(json.RawMessage(nil), raw...)
	}
	if raw, ok := o.fields["stream"]; ok && !isNull(raw) && string(raw) != "false" {
		return o.err("stream", "is set (llmbatch reads whole responses; remove it or set it to false)")
	}
	if raw, ok := o.fields["n"]; ok && !isNull(raw) && string(raw) != "1" {
		return o.err("n", "is %s (llmbatch keeps one answer per prompt; remove it, or give each copy its own line and id)", describe(raw))
	}
	for _, k := range PassThroughFields {
		if raw, ok := o.fields[k]; ok && !isNull(raw) {
			if req.Extra == nil {
				req.Extra = map[string]json.RawMessage{}
			}
			req.Extra[k] = append(json.RawMessage(nil), raw...)
		}
	}
	return nil
}

// messages reads and checks the "messages" array.
func (o object) messages() ([]Message, *fieldError) {
	raw, ok := o.fields["messages"]
	if !ok || isNull(raw) {
		return nil, o.err("messages", `missing (give at least one {"role":"user","content":"..."})`)
	}
	// One decode for all messages; only when it fails is the array taken apart to say where.
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil {
		return nil, o.messagesShapeError(raw)
	}
	if len(objs) == 0 {
		return nil, o.err("messages", `is empty (give at least one {"role":"user","content":"..."})`)
	}
	msgs := make([]Message, len(objs))
	hasUser := false
	for i, fields := range objs {
		path := fmt.Sprintf("%smessages[%d]", o.prefix, i)
		if fields == nil {
			return nil, errField(path, "must be a JSON object, got null")
		}
		mo := object{fields: fields, prefix: path + "."}
		if ferr := mo.message(&msgs[i]); ferr != nil {
			return nil, ferr
		}
		hasUser = hasUser || msgs[i].Role == "user"
	}
	if !hasUser {
		return nil, o.err("messages", `has no "user" message (add the user's turn)`)
	}
	return msgs, nil
}

// messagesShapeError explains why "messages" is not an array of objects.
func (o object) messagesShapeError(raw json.RawMessage) *fieldError {
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return o.err("messages", "must be an array of messages, got %s", describe(raw))
	}
	for i, r := range raws {
		if _, ferr := decodeObject(r, fmt.Sprintf("%smessages[%d]", o.prefix, i)); ferr != nil {
			return ferr
		}
	}
	return o.err("messages", "must be an array of messages") // not reached: one element failed above
}

// message reads one element of "messages".
func (o object) message(m *Message) *fieldError {
	if ferr := o.checkUnknown(msgFields, "a message has role, content, name, tool_call_id and tool_calls"); ferr != nil {
		return ferr
	}
	role, ok, ferr := o.str("role")
	if ferr != nil {
		return ferr
	}
	switch role {
	case "system", "developer", "user", "assistant", "tool":
	default:
		if !ok {
			return o.err("role", "missing (one of system, developer, user, assistant, tool)")
		}
		return o.err("role", "unknown role %q (use system, developer, user, assistant or tool)", role)
	}
	m.Role = role
	if m.Name, _, ferr = o.str("name"); ferr != nil {
		return ferr
	}
	if m.ToolCallID, _, ferr = o.str("tool_call_id"); ferr != nil {
		return ferr
	}
	if role == "tool" && m.ToolCallID == "" {
		return o.err("tool_call_id", "missing (a tool message must name the call it answers)")
	}
	if m.ToolCalls, ferr = o.rawOf("tool_calls", '[', "an array of tool calls"); ferr != nil {
		return ferr
	}
	if m.Content, ferr = o.content(); ferr != nil {
		return ferr
	}
	if m.Content.Parts == nil && strings.TrimSpace(m.Content.Text) == "" && (role != "assistant" || m.ToolCalls == nil) {
		return o.err("content", "is empty (give the message text)")
	}
	if m.Content.Parts != nil && len(m.Content.Parts) == 0 {
		return o.err("content", "is an empty array (give at least one part)")
	}
	return nil
}

// content reads a message's "content": a string, an array of parts, null or absent.
func (o object) content() (Content, *fieldError) {
	raw, ok := o.fields["content"]
	if !ok || isNull(raw) {
		return Content{}, nil
	}
	if raw[0] == '"' {
		if text, ok := plainString(raw); ok {
			return Content{Text: text}, nil
		}
	} else if raw[0] != '[' {
		return Content{}, o.err("content", "must be a string or an array of parts, got %s", describe(raw))
	}
	var c Content
	if err := json.Unmarshal(raw, &c); err != nil {
		return Content{}, &fieldError{field: o.prefix + "content",
			msg: fmt.Sprintf(`%v (each part is an object like {"type":"text","text":"..."})`, err), err: err}
	}
	return c, nil
}

// err returns a fieldError for the field key of o.
func (o object) err(key, format string, args ...any) *fieldError {
	return errField(o.prefix+key, format, args...)
}

func (o object) has(key string) bool {
	_, ok := o.fields[key]
	return ok
}

// checkUnknown rejects fields outside allowed, naming the first (in sorted order, so the message is stable).
func (o object) checkUnknown(allowed map[string]bool, hint string) *fieldError {
	var unknown []string
	for k := range o.fields {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return o.err(unknown[0], "unknown field (%s)", hint)
}

// id reads an optional, non-empty string id.
func (o object) id(key string) (string, *fieldError) {
	id, ok, ferr := o.str(key)
	if ferr != nil {
		return "", ferr
	}
	if ok && strings.TrimSpace(id) == "" {
		return "", o.err(key, "is empty (give a unique id, or leave it out to get line-N)")
	}
	return id, nil
}

// str reads an optional string; ok is false when the field is absent or null.
func (o object) str(key string) (s string, ok bool, ferr *fieldError) {
	raw, ok := o.fields[key]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	if raw[0] != '"' {
		return "", false, o.err(key, "must be a string, got %s", describe(raw))
	}
	if s, ok := plainString(raw); ok {
		return s, true, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, &fieldError{field: o.prefix + key, msg: err.Error(), err: err}
	}
	return s, true, nil
}

// positiveInt reads an optional whole number >= 1; 0 means absent.
func (o object) positiveInt(key string) (int, *fieldError) {
	raw, ok := o.fields[key]
	if !ok || isNull(raw) {
		return 0, nil
	}
	var f float64
	if raw[0] == '"' || json.Unmarshal(raw, &f) != nil || f != math.Trunc(f) || f < 1 || f > math.MaxInt32 {
		return 0, o.err(key, "must be a positive whole number, got %s", describe(raw))
	}
	return int(f), nil
}

// number reads an optional number within [lo, hi].
func (o object) number(key string, lo, hi float64) (*float64, *fieldError) {
	raw, ok := o.fields[key]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var f float64
	if raw[0] == '"' || json.Unmarshal(raw, &f) != nil || f < lo || f > hi {
		return nil, o.err(key, "must be a number from %g to %g, got %s", lo, hi, describe(raw))
	}
	return &f, nil
}

// stop reads "stop": a string or an array of strings.
func (o object) stop() ([]string, *fieldError) {
	raw, ok := o.fields["stop"]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var stops []string
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, &fieldError{field: o.prefix + "stop", msg: err.Error(), err: err}
		}
		stops = []string{s}
	case '[':
		if err := json.Unmarshal(raw, &stops); err != nil {
			return nil, o.err("stop", "must be a string or an array of strings, got %s", describe(raw))
		}
	default:
		return nil, o.err("stop", "must be a string or an array of strings, got %s", describe(raw))
	}
	for i, s := range stops {
		if s == "" {
			return nil, o.err(fmt.Sprintf("stop[%d]", i), "is empty (remove it)")
		}
	}
	return stops, nil
}

// rawOf reads an optional JSON value that must start with opening ('{' or '['), compacted.
func (o object) rawOf(key string, opening byte, want string) (json.RawMessage, *fieldError) {
	raw, ok := o.fields[key]
	if !ok || isNull(raw) {
		return nil, nil
	}
	if raw[0] != opening {
		return nil, o.err(key, "must be %s, got %s", want, describe(raw))
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil { // cannot fail: the line was valid JSON
		return nil, &fieldError{field: o.prefix + key, msg: err.Error(), err: err}
	}
	return b.Bytes(), nil
}

// plainString decodes a JSON string literal that has no escapes and is valid UTF-8 by slicing it.
// encoding/json would validate and scan it twice more, which dominates the cost of long prompts.
// raw must come from an already validated document, so it cannot hold raw control characters.
func plainString(raw []byte) (string, bool) {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') >= 0 || !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// describe names a raw JSON value's type, with a short excerpt for scalars, for error messages.
func describe(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		if len(raw) > 40 {
			return "string " + strings.ToValidUTF8(string(raw[:37]), "") + `..."`
		}
		return "string " + string(raw)
	}
	if len(raw) > 40 {
		raw = raw[:40]
	}
	return strings.ToValidUTF8(string(raw), "")
}
