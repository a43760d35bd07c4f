package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// callRecorder records each Write call's bytes.
type callRecorder struct{ calls [][]byte }

func (c *callRecorder) Write(p []byte) (int, error) {
	c.calls = append(c.calls, bytes.Clone(p))
	return len(p), nil
}

func TestWriteOneCompleteLinePerCall(t *testing.T) {
	rec := &callRecorder{}
	w := NewWriter(rec, FormatDefault)
	in := []*Result{
		okResult("a1", "h1", "line one\nline two <b>&</b>"),
		errResult("a2", "h2", 400),
		okResult("a3", "h3", strings.Repeat("x", 1<<20)),
	}
	for _, r := range in {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.calls) != len(in) {
		t.Fatalf("%d Write calls for %d results", len(rec.calls), len(in))
	}
	for i, call := range rec.calls {
		if bytes.Count(call, []byte("\n")) != 1 || call[len(call)-1] != '\n' {
			t.Fatalf("call %d is not exactly one line: %q", i, tailOf(call))
		}
		var got Result
		if err := json.Unmarshal(call, &got); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !reflect.DeepEqual(&got, in[i]) {
			t.Fatalf("call %d round trip:\n got %+v\nwant %+v", i, got, *in[i])
		}
	}
	if !bytes.Contains(rec.calls[0], []byte("<b>&</b>")) {
		t.Errorf("HTML is escaped: %s", rec.calls[0])
	}
}

// enospcFile passes writes to f until limit bytes have been written, then writes what still fits
// and fails with ENOSPC, like a full disk.
type enospcFile struct {
	f     *os.File
	limit int
	calls int
}

func (e *enospcFile) Write(p []byte) (int, error) {
	e.calls++
	if len(p) <= e.limit {
		e.limit -= len(p)
		return e.f.Write(p)
	}
	n, _ := e.f.Write(p[:e.limit])
	e.limit = 0
	return n, &os.PathError{Op: "write", Path: e.f.Name(), Err: syscall.ENOSPC}
}

func TestWriteDiskFullIsSticky(t *testing.T) {
	path := outPath(t)
	f, err := OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := okResult("id-0", "h", "some content")
	one, _ := json.Marshal(line)
	disk := &enospcFile{f: f, limit: 3*(len(one)+1) + 10} // room for 3 lines and a bit
	w := NewWriter(disk, FormatDefault)

	var werr error
	written := 0
	for i := range 10 {
		if werr = w.Write(okResult("id-"+string(rune('0'+i)), "h", "some content")); werr != nil {
			break
		}
		written++
	}
	if written != 3 {
		t.Fatalf("wrote %d lines before the error, want 3", written)
	}
	if !errors.Is(werr, syscall.ENOSPC) || !strings.Contains(werr.Error(), path) {
		t.Fatalf("error %q: want ENOSPC naming %s", werr, path)
	}
	calls := disk.calls
	for range 3 {
		if err := w.Write(okResult("later", "h", "x")); err != werr {
			t.Fatalf("later Write returned %v, want the sticky %v", err, werr)
		}
	}
	if err := w.Sync(); err != werr {
		t.Fatalf("Sync returned %v, want the sticky error", err)
	}
	if w.Err() != werr {
		t.Fatalf("Err() = %v", w.Err())
	}
	if disk.calls != calls {
		t.Fatalf("the output was written %d more times after the error", disk.calls-calls)
	}

	// Three whole lines and a 10-byte fragment; resume removes the fragment.
	c, err := Scan(path, FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lines != 3 || c.TornLine != 4 || c.TornBytes != 10 {
		t.Fatalf("scan: lines %d, torn line %d (%d bytes); want 3, 4 (10 bytes)", c.Lines, c.TornLine, c.TornBytes)
	}
	if n := len(assertValidJSONL(t, path)); n != 3 {
		t.Fatalf("%d lines after repair", n)
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWriteShortWriteIsSticky(t *testing.T) {
	w := NewWriter(shortWriter{}, FormatDefault, WithName("pipe:out"))
	err := w.Write(okResult("a", "h", "c"))
	if !errors.Is(err, io.ErrShortWrite) || !strings.Contains(err.Error(), "pipe:out") {
		t.Fatalf("got %v, want a short-write error naming pipe:out", err)
	}
	if err2 := w.Write(okResult("b", "h", "c")); err2 != err {
		t.Fatalf("second Write: %v", err2)
	}
}

func TestWriteRejectsInvalidResultsWithoutStopping(t *testing.T) {
	rec := &callRecorder{}
	w := NewWriter(rec, FormatDefault)
	bad := map[string]*Result{
		"nil":          nil,
		"no id":        {Status: StatusOK},
		"bad status":   {CustomID: "a", Status: "done"},
		"bad metadata": {CustomID: "a", Status: StatusOK, Metadata: json.RawMessage(`{"broken`)},
	}
	for name, r := range bad {
		if err := w.Write(r); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if len(rec.calls) != 0 {
		t.Fatalf("invalid results reached the output: %q", rec.calls)
	}
	if err := w.Write(okResult("a", "h", "c")); err != nil {
		t.Fatalf("a valid result after invalid ones: %v", err)
	}
	if w.Err() != nil || len(rec.calls) != 1 {
		t.Fatalf("Err %v, %d calls", w.Err(), len(rec.calls))
	}
}

type failingSyncer struct{ callRecorder }

func (*failingSyncer) Sync() error { return syscall.EIO }

func TestSync(t *testing.T) {
	f, err := OpenAppend(outPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f, FormatDefault)
	if err := w.Write(okResult("a", "h", "c")); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("sync of a file: %v", err)
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if err := NewWriter(pw, FormatDefault).Sync(); err != nil {
		t.Fatalf("sync of a pipe: %v", err)
	}
	if err := NewWriter(&callRecorder{}, FormatDefault).Sync(); err != nil {
		t.Fatalf("sync of a plain writer: %v", err)
	}

	w = NewWriter(&failingSyncer{}, FormatDefault, WithName("disk"))
	if err := w.Sync(); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "disk") {
		t.Fatalf("failing sync: %v", err)
	}
	if err := w.Write(okResult("a", "h", "c")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write after failed sync: %v", err)
	}
}

func TestWriterConcurrentUseKeepsLinesWhole(t *testing.T) {
	path := outPath(t)
	f, err := OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(f, FormatDefault)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := string(rune('a'+g)) + "-" + strings.Repeat("i", i)
				if err := w.Write(okResult(id, "h", strings.Repeat("c", 5000))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Scan(path, FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lines != 1600 || c.IDs != 1600 || c.TornLine != 0 {
		t.Fatalf("lines %d, ids %d, torn %d", c.Lines, c.IDs, c.TornLine)
	}
}

func TestOpenAIFormatLines(t *testing.T) {
	ok := okResult("a1", "hash1", "Hello")
	ok.Usage.CachedTokens = 7
	cases := []struct {
		name string
		r    *Result
		want string
	}{
		{"ok", ok, `{"id":"batch_req_` + lineID("a1", "hash1") + `","custom_id":"a1","response":{"status_code":200,"request_id":"req_a1","body":{"id":"chatcmpl-` + lineID("a1", "hash1") + `","object":"chat.completion","created":1741064767,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":31,"completion_tokens":120,"total_tokens":151,"prompt_tokens_details":{"cached_tokens":7}}}},"error":null,"request_hash":"hash1"}`},
		{"tool calls only", &Result{CustomID: "t", Status: StatusOK, Model: "m", FinishReason: "tool_calls", RequestHash: "h", ToolCalls: json.RawMessage(`[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]`)},
			`{"id":"batch_req_` + lineID("t", "h") + `","custom_id":"t","response":{"status_code":200,"request_id":"","body":{"id":"chatcmpl-` + lineID("t", "h") + `","object":"chat.completion","created":1741064767,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}]}},"error":null,"request_hash":"h"}`},
		{"http error", errResult("a2", "hash2", 429),
			`{"id":"batch_req_` + lineID("a2", "hash2") + `","custom_id":"a2","response":{"status_code":429,"request_id":"","body":{"error":{"message":"too many requests","type":"rate_limit","param":null,"code":null}}},"error":null,"request_hash":"hash2"}`},
		{"no response", errResult("a3", "hash3", 0),
			`{"id":"batch_req_` + lineID("a3", "hash3") + `","custom_id":"a3","response":null,"error":{"code":"rate_limit","message":"too many requests"},"request_hash":"hash3"}`},
		{"malformed 200", errResult("a4", "hash4", 200),
			`{"id":"batch_req_` + lineID("a4", "hash4") + `","custom_id":"a4","response":null,"error":{"code":"rate_limit","message":"too many requests"},"request_hash":"hash4"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := NewWriter(&buf, FormatOpenAI, WithClock(fixedClock)).Write(tc.r); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tc.want+"\n" {
				t.Fatalf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestOpenAIIDIsDeterministic(t *testing.T) {
	id := func(customID, hash string) string {
		var buf bytes.Buffer
		if err := NewWriter(&buf, FormatOpenAI).Write(okResult(customID, hash, "x")); err != nil {
			t.Fatal(err)
		}
		var l struct{ ID string }
		if err := json.Unmarshal(buf.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	a := id("a", "h1")
	if !strings.HasPrefix(a, "batch_req_") || len(a) != len("batch_req_")+32 {
		t.Fatalf("id %q", a)
	}
	if id("a", "h1") != a {
		t.Fatal("same custom_id and hash gave different ids")
	}
	if id("a", "h2") == a || id("b", "h1") == a || id("a\x00h", "1") == id("a", "h\x001") {
		t.Fatal("different inputs gave the same id")
	}
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"": FormatDefault, "default": FormatDefault, "OpenAI": FormatOpenAI, " openai ": FormatOpenAI} {
		got, err := ParseFormat(s)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseFormat("csv"); err == nil || !strings.Contains(err.Error(), "csv") {
		t.Errorf("ParseFormat(csv): %v", err)
	}
	var f Format
	if err := f.Set("openai"); err != nil || f != FormatOpenAI || f.String() != "openai" || f.Type() != "format" {
		t.Errorf("Set: %v %v", f, err)
	}
}

func TestWriteMasksCredentialsInErrorMessages(t *testing.T) {
	for _, format := range []Format{FormatDefault, FormatOpenAI} {
		path := outPath(t)
		r := errResult("a", "h1", 0)
		r.Error.Message = `Post "https://gw.example/v1/chat/completions?key=sk-secret-1": dial tcp: connection refused`
		writeResults(t, path, format, r)
		got := string(readFile(t, path))
		if strings.Contains(got, "sk-secret-1") || !strings.Contains(got, "key=REDACTED") {
			t.Errorf("%s: line %q", format, got)
		}
		if !strings.Contains(r.Error.Message, "sk-secret-1") {
			t.Errorf("%s: the caller's result was modified", format)
		}
	}
}
