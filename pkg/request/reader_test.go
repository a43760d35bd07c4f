package request

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// writeInput writes content to a file in a fresh temp dir and returns its path.
func writeInput(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll reads every request and error from the file at path.
func readAll(t *testing.T, path string) ([]*Request, []error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := NewReader(f, path)
	var reqs []*Request
	var errs []error
	for {
		req, err := rd.Next()
		if err == io.EOF {
			return reqs, errs
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reqs = append(reqs, req)
	}
}

func ptr(f float64) *float64 { return &f }

func TestReaderShapes(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Request // Hash and Line are checked separately
	}{
		{
			name: "batch",
			line: `{"custom_id":"a1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",` +
				`"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":200,` +
				`"temperature":0.2,"top_p":0.9,"stop":"\n\n","category":"Tiny","metadata":{"k":[1, 2]}}}`,
			want: Request{ID: "a1", Shape: ShapeBatch, Model: "gpt-4o-mini", MaxTokens: 200,
				Messages:    []Message{{Role: "system", Content: Content{Text: "Be brief."}}, {Role: "user", Content: Content{Text: "Hi"}}},
				Temperature: ptr(0.2), TopP: ptr(0.9), Stop: []string{"\n\n"}, Category: "tiny",
				Metadata: json.RawMessage(`{"k":[1, 2]}`)},
		},
		{
			name: "batch max_completion_tokens without method or url",
			line: `{"custom_id":"a2","body":{"messages":[{"role":"developer","content":"d"},{"role":"user","content":"u"}],"max_completion_tokens":64}}`,
			want: Request{ID: "a2", Shape: ShapeBatch, MaxTokens: 64,
				Messages: []Message{{Role: "developer", Content: Content{Text: "d"}}, {Role: "user", Content: Content{Text: "u"}}}},
		},
		{
			name: "chat with parts, tools and a tool turn",
			line: `{"id":"c1","messages":[{"role":"user","content":[{"type":"text","text":"What is the weather?"}]},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"call_1","content":"sunny"}],` +
				`"tools":[ {"type":"function","function":{"name":"weather"}} ],"response_format":{"type":"text"},"stop":["a","b"]}`,
			want: Request{ID: "c1", Shape: ShapeChat,
				Messages: []Message{
					{Role: "user", Content: Content{Parts: []Part{{Type: "text", Text: "What is the weather?",
						Raw: json.RawMessage(`{"type":"text","text":"What is the weather?"}`)}}}},
					{Role: "assistant", ToolCalls: json.RawMessage(`[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{}"}}]`)},
					{Role: "tool", ToolCallID: "call_1", Content: Content{Text: "sunny"}},
				},
				Tools:          json.RawMessage(`[{"type":"function","function":{"name":"weather"}}]`),
				ResponseFormat: json.RawMessage(`{"type":"text"}`), Stop: []string{"a", "b"}},
		},
		{
			name: "prompt with system and no id",
			line: `{"prompt":"Summarise: ...","system":"You summarise.","model":"claude-haiku","temperature":0,"metadata":"tag"}`,
			want: Request{ID: "line-1", Shape: ShapePrompt, Model: "claude-haiku", Temperature: ptr(0),
				Messages: []Message{{Role: "system", Content: Content{Text: "You summarise."}}, {Role: "user", Content: Content{Text: "Summarise: ..."}}},
				Metadata: json.RawMessage(`"tag"`)},
		},
		{
			name: "prompt with null optional fields",
			line: `{"id":"p1","prompt":"hello","system":null,"model":null,"max_tokens":null,"stop":null,"tools":null,"metadata":null,"category":""}`,
			want: Request{ID: "p1", Shape: ShapePrompt, Messages: []Message{{Role: "user", Content: Content{Text: "hello"}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs, errs := readAll(t, writeInput(t, tt.line+"\n"))
			if len(errs) != 0 || len(reqs) != 1 {
				t.Fatalf("got %d requests, errors %v", len(reqs), errs)
			}
			got := *reqs[0]
			if got.Line != 1 {
				t.Errorf("Line = %d, want 1", got.Line)
			}
			sum := sha256.Sum256(got.Canonical())
			if got.Hash != hex.EncodeToString(sum[:]) {
				t.Errorf("Hash = %q, want the sha256 of Canonical()", got.Hash)
			}
			got.Line, got.Hash = 0, ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestReaderLineHandling(t *testing.T) {
	input := "\xEF\xBB\xBF" + `{"id":"a","prompt":"one"}` + "\r\n" +
		"\r\n" +
		"   \t\n" +
		`{"id":"b","prompt":"two"}` + "\r\n" +
		`{"id":"c","prompt":"bad","max_tokens":0}` + "\n" +
		`{"id":"d","prompt":"last line without a newline"}`
	reqs, errs := readAll(t, writeInput(t, input))
	var ids []string
	var lines []int
	for _, r := range reqs {
		ids = append(ids, r.ID)
		lines = append(lines, r.Line)
	}
	if want := []string{"a", "b", "d"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	if want := []int{1, 4, 6}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines = %v, want %v", lines, want)
	}
	var le *LineError
	if len(errs) != 1 || !errors.As(errs[0], &le) || le.Line != 5 || le.Field != "max_tokens" {
		t.Errorf("errors = %v, want one LineError on line 5, field max_tokens", errs)
	}
}

func TestReaderBOMOnlyOnFirstLine(t *testing.T) {
	_, errs := readAll(t, writeInput(t, `{"id":"a","prompt":"x"}`+"\n\xEF\xBB\xBF"+`{"id":"b","prompt":"y"}`+"\n"))
	var le *LineError
	if len(errs) != 1 || !errors.As(errs[0], &le) || le.Line != 2 || !strings.Contains(le.Msg, "invalid JSON") {
		t.Errorf("errors = %v, want invalid JSON on line 2", errs)
	}
}

func TestReaderHugeLine(t *testing.T) {
	const words = (33 << 20) / 5 // "word " repeated: a 33 MiB prompt, past the 32 MiB DESIGN requires
	path := filepath.Join(t.TempDir(), "huge.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString(`{"id":"small","prompt":"before"}` + "\n" + `{"id":"huge","prompt":"`)
	for range words {
		w.WriteString("word ")
	}
	w.WriteString(`"}` + "\n" + `{"id":"after","prompt":"after"}` + "\n")
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	reqs, errs := readAll(t, path)
	if len(errs) != 0 || len(reqs) != 3 {
		t.Fatalf("got %d requests, errors %v", len(reqs), errs)
	}
	got := reqs[1].Messages[0].Content.Text
	if len(got) != 5*words || strings.Count(got, "word ") != words {
		t.Errorf("huge prompt has %d bytes, want %d bytes of %q", len(got), 5*words, "word ")
	}
	if reqs[2].ID != "after" || reqs[2].Line != 3 {
		t.Errorf("request after the huge line = %q line %d", reqs[2].ID, reqs[2].Line)
	}
}

func TestReaderLineCap(t *testing.T) {
	long := `{"id":"long","prompt":"` + strings.Repeat("x", 200<<10) + `"}`
	for _, eol := range []string{"\n", ""} { // a too-long last line without a newline is caught too
		t.Run("eol="+strings.TrimSpace(eol), func(t *testing.T) {
			f, err := os.Open(writeInput(t, `{"id":"a","prompt":"ok"}`+"\n"+long+"\n"+`{"id":"b","prompt":"ok"}`+"\n"+long+eol))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rd := NewReader(f, "in.jsonl")
			rd.MaxLineBytes = 100 << 10
			var got []string
			for {
				req, err := rd.Next()
				if err == io.EOF {
					break
				}
				var le *LineError
				switch {
				case errors.As(err, &le):
					if !strings.Contains(le.Msg, "longer than the 100.0 KiB limit") {
						t.Errorf("message = %q", le.Msg)
					}
					got = append(got, le.Error()[:len("in.jsonl:2")])
				case err != nil:
					t.Fatal(err)
				default:
					got = append(got, req.ID)
				}
			}
			if want := []string{"a", "in.jsonl:2", "b", "in.jsonl:4"}; !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestReaderLineExactlyAtCap(t *testing.T) {
	line := `{"id":"a","prompt":"` + strings.Repeat("y", 100) + `"}`
	rd := NewReader(strings.NewReader(line+"\n"+line[:len(line)-2]+`y"}`), "in")
	rd.MaxLineBytes = len(line)
	if req, err := rd.Next(); err != nil || req.ID != "a" {
		t.Fatalf("line at the cap: %v, %v", req, err)
	}
	_, err := rd.Next()
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("line one byte over the cap: %v", err)
	}
}

func TestReaderReadErrorIsSticky(t *testing.T) {
	boom := errors.New("disk on fire")
	rd := NewReader(io.MultiReader(strings.NewReader(`{"id":"a","prompt":"x"}`+"\n"+`{"id":"b"`), iotest.ErrReader(boom)), "in")
	if req, err := rd.Next(); err != nil || req.ID != "a" {
		t.Fatalf("first Next = %v, %v", req, err)
	}
	for range 2 {
		_, err := rd.Next()
		var le *LineError
		if !errors.Is(err, boom) || errors.As(err, &le) || !strings.Contains(err.Error(), "read in: line 2") {
			t.Fatalf("Next = %v, want the wrapped read error naming line 2", err)
		}
	}
}

func TestReaderEmptyInput(t *testing.T) {
	for _, in := range []string{"", "\n\n", "\xEF\xBB\xBF\r\n"} {
		rd := NewReader(bytes.NewReader([]byte(in)), "in")
		if req, err := rd.Next(); err != io.EOF {
			t.Errorf("Next(%q) = %v, %v, want io.EOF", in, req, err)
		}
	}
}

func TestText(t *testing.T) {
	reqs, errs := readAll(t, writeInput(t, `{"messages":[{"role":"system","content":"Sys."},`+
		`{"role":"user","content":[{"type":"text","text":"Look:"},{"type":"image_url","image_url":{"url":"http://x/y.png"}},{"type":"text","text":"what is it?"}]},`+
		`{"role":"assistant","content":null,"tool_calls":[]},{"role":"user","content":"Thanks"}]}`))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if got, want := reqs[0].Text(), "Sys.\n\nLook:\nwhat is it?\n\nThanks"; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
}
