package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/request"
)

// vectors are reference counts from js-tiktoken, written by testdata/tokens/gen.mjs.
type vectors struct {
	Encodings []string `json:"encodings"`
	Strings   []struct {
		Text   string         `json:"text"`
		Counts map[string]int `json:"counts"`
	} `json:"strings"`
	Generated []struct {
		Unit   string         `json:"unit"`
		Times  int            `json:"times"`
		Counts map[string]int `json:"counts"`
	} `json:"generated"`
	Chats []struct {
		Messages []struct {
			Role    string `json:"role"`
			Name    string `json:"name"`
			Content string `json:"content"`
		} `json:"messages"`
		Totals map[string]int `json:"totals"`
	} `json:"chats"`
}

var loadVectors = sync.OnceValues(func() (*vectors, error) {
	data, err := os.ReadFile("../../testdata/tokens/vectors.json")
	if err != nil {
		return nil, err
	}
	var v vectors
	return &v, json.Unmarshal(data, &v)
})

func testVectors(t testing.TB) *vectors {
	t.Helper()
	v, err := loadVectors()
	if err != nil {
		t.Fatalf("load vectors: %v", err)
	}
	if len(v.Strings) < 50 || len(v.Chats) == 0 || len(v.Encodings) != 2 {
		t.Fatalf("vectors.json looks truncated: %d strings, %d chats", len(v.Strings), len(v.Chats))
	}
	return v
}

func short(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…(%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func TestCountMatchesTiktoken(t *testing.T) {
	t.Parallel()
	v := testVectors(t)
	c := New()
	for _, s := range v.Strings {
		for _, enc := range v.Encodings {
			id, _ := resolve(enc)
			n, exact := c.count(context.Background(), id, s.Text)
			if want := s.Counts[enc]; n != want || !exact {
				t.Errorf("%s %s: got %d (exact %v), want %d exactly", enc, short(s.Text), n, exact, want)
			}
			if got := c.Count(enc, s.Text); got != n {
				t.Errorf("%s %s: Count = %d, count = %d", enc, short(s.Text), got, n)
			}
		}
	}
}

func TestCountPathological(t *testing.T) {
	t.Parallel()
	v := testVectors(t)
	c := New()
	for _, g := range v.Generated {
		text := strings.Repeat(g.Unit, g.Times)
		for _, enc := range v.Encodings {
			if n, exact := c.count(context.Background(), mustResolve(enc), text); n != g.Counts[enc] || !exact {
				t.Errorf("%s %d×%q: %d tokens (exact %v), want %d", enc, g.Times, g.Unit, n, exact, g.Counts[enc])
			}
		}
	}
	// Its speed (100 KB without whitespace in well under a second; tiktoken takes seconds) is
	// measured by BenchmarkPathological, not asserted here.
}

func chatRequest(msgs []struct {
	Role    string `json:"role"`
	Name    string `json:"name"`
	Content string `json:"content"`
}) *request.Request {
	r := &request.Request{ID: "x"}
	for _, m := range msgs {
		r.Messages = append(r.Messages, request.Message{Role: m.Role, Name: m.Name, Content: request.Content{Text: m.Content}})
	}
	return r
}

func TestInputChatOverhead(t *testing.T) {
	v := testVectors(t)
	c := New()
	for i, ch := range v.Chats {
		req := chatRequest(ch.Messages)
		for _, enc := range v.Encodings {
			// Twice: the second pass is served by the cache and must agree.
			for pass := range 2 {
				n, exact := c.Input(req, enc)
				if want := ch.Totals[enc]; n != want || !exact {
					t.Errorf("chat %d %s pass %d: %d (exact %v), want %d exactly", i, enc, pass, n, exact, want)
				}
			}
		}
		// No encoding configured: the o200k_base count, marked as an estimate.
		if n, exact := c.Input(req, ""); n != ch.Totals[O200K] || exact {
			t.Errorf("chat %d without encoding: %d (exact %v), want %d estimated", i, n, exact, ch.Totals[O200K])
		}
		if n, exact := c.Input(req, "p50k_base"); n != ch.Totals[O200K] || exact {
			t.Errorf("chat %d unknown encoding: %d (exact %v), want %d estimated", i, n, exact, ch.Totals[O200K])
		}
	}
}

func TestInputEstimates(t *testing.T) {
	c := New()
	base := func() *request.Request {
		return &request.Request{ID: "x", Messages: []request.Message{
			{Role: "system", Content: request.Content{Text: "You extract fields."}},
			{Role: "user", Content: request.Content{Text: "Order 42 shipped to Paris on 3 May."}},
		}}
	}
	want, exact := c.Input(base(), O200K)
	if !exact {
		t.Fatal("plain request not exact")
	}

	tools := json.RawMessage(`[ {"type": "function", "function": {"name": "get_weather",
		"description": "Current weather for a city", "parameters": {"type": "object",
		"properties": {"city": {"type": "string"}}, "required": ["city"]}}} ]`)
	schema := json.RawMessage(`{"type":"json_schema","json_schema":{"name":"order","schema":{"type":"object","properties":{"id":{"type":"integer"},"city":{"type":"string"}}}}}`)
	compact := func(raw json.RawMessage) int {
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			t.Fatal(err)
		}
		return c.Count(O200K, b.String())
	}

	tests := []struct {
		name  string
		edit  func(r *request.Request)
		delta int // expected tokens added; -1: only check that some were added
		exact bool
	}{
		{"response_format text", func(r *request.Request) { r.ResponseFormat = json.RawMessage(`{"type":"text"}`) }, 0, true},
		{"null tools", func(r *request.Request) { r.Tools = json.RawMessage(`null`) }, 0, true},
		{"tools", func(r *request.Request) { r.Tools = tools }, -1, false},
		{"json schema", func(r *request.Request) { r.ResponseFormat = schema }, compact(schema), false},
		{"name", func(r *request.Request) { r.Messages[1].Name = "alice" }, c.Count(O200K, "alice") + tokensPerName, true},
		{"image low", func(r *request.Request) {
			r.Messages[1].Content = request.Content{Parts: []request.Part{
				{Type: "text", Text: r.Messages[1].Content.Text},
				{Type: "image_url", Raw: json.RawMessage(`{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}`)},
			}}
		}, imageLowDetail, false},
		{"image default", func(r *request.Request) {
			r.Messages[1].Content = request.Content{Parts: []request.Part{
				{Type: "text", Text: r.Messages[1].Content.Text},
				{Type: "image_url", Raw: json.RawMessage(`{"type":"image_url","image_url":{"url":"https://x/y.png"}}`)},
			}}
		}, imageDefault, false},
		{"single text part", func(r *request.Request) {
			r.Messages[1].Content = request.Content{Parts: []request.Part{{Type: "text", Text: r.Messages[1].Content.Text}}}
		}, 0, true},
		{"tool call", func(r *request.Request) {
			r.Messages = append(r.Messages,
				request.Message{Role: "assistant", ToolCalls: json.RawMessage(`[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]`)},
				request.Message{Role: "tool", ToolCallID: "call_1", Content: request.Content{Text: "ok"}})
		}, -1, false},
	}
	for _, tt := range tests {
		r := base()
		tt.edit(r)
		n, exact := c.Input(r, O200K)
		if exact != tt.exact {
			t.Errorf("%s: exact %v, want %v", tt.name, exact, tt.exact)
		}
		switch {
		case tt.delta >= 0 && n != want+tt.delta:
			t.Errorf("%s: %d tokens, want %d + %d", tt.name, n, want, tt.delta)
		case tt.delta < 0 && n <= want:
			t.Errorf("%s: %d tokens, want more than %d", tt.name, n, want)
		}
	}

	// The tools are counted in compact form: indentation does not change the count.
	r1, r2 := base(), base()
	r1.Tools = tools
	var buf bytes.Buffer
	if err := json.Indent(&buf, tools, "\t", "        "); err != nil {
		t.Fatal(err)
	}
	r2.Tools = buf.Bytes()
	n1, _ := c.Input(r1, O200K)
	n2, _ := c.Input(r2, O200K)
	if n1 != n2 {
		t.Errorf("indented tools: %d tokens, compact: %d", n2, n1)
	}
}

func TestCacheSharedPrompt(t *testing.T) {
	c := New()
	c.cache = newCache(64)
	system := strings.Repeat("You are a meticulous assistant that labels support tickets. ", 20)
	want := c.Count(O200K, system)
	for i := range 1000 {
		req := &request.Request{Messages: []request.Message{
			{Role: "system", Content: request.Content{Text: system}},
			{Role: "user", Content: request.Content{Text: fmt.Sprintf("Ticket %d: my invoice number %d is wrong", i, i*7919)}},
		}}
		n, _ := c.Input(req, O200K)
		user := c.Count(O200K, req.Messages[1].Content.Text)
		roles := c.Count(O200K, "system") + c.Count(O200K, "user")
		if n != replyPriming+2*tokensPerMessage+roles+want+user {
			t.Fatalf("request %d: %d tokens", i, n)
		}
		if l := c.cache.len(); l > 64 {
			t.Fatalf("cache holds %d entries, bound 64", l)
		}
	}
	// The shared prompt, used by every request, survived a thousand distinct ones.
	if _, ok := c.cache.get(c.cache.key(encO200K, kindText, system)); !ok {
		t.Error("the shared system prompt was evicted")
	}
	// A text seen once long ago is gone.
	if _, ok := c.cache.get(c.cache.key(encO200K, kindText, "Ticket 0: my invoice number 0 is wrong")); ok {
		t.Error("an old one-off prompt is still cached")
	}
	// Entries for one encoding never answer for another.
	if _, ok := c.cache.get(c.cache.key(encCL100K, kindText, system)); ok {
		t.Error("o200k_base count served for cl100k_base")
	}
}

func TestConcurrentUse(t *testing.T) {
	v := testVectors(t)
	c := New()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i, s := range v.Strings {
				enc := v.Encodings[(i+w)%2]
				req := &request.Request{Messages: []request.Message{{Role: "user", Content: request.Content{Text: s.Text}}}}
				n, _ := c.Input(req, enc)
				if want := s.Counts[enc] + replyPriming + tokensPerMessage + c.Count(enc, "user"); n != want {
					t.Errorf("worker %d %s %s: %d, want %d", w, enc, short(s.Text), n, want)
				}
			}
		})
	}
	wg.Wait()
}

func TestWarm(t *testing.T) {
	if err := New().Warm(); err != nil {
		t.Fatal(err)
	}
}

func mustResolve(enc string) encodingID {
	id, _ := resolve(enc)
	return id
}
