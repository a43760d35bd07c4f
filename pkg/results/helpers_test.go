package results

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func fixedClock() time.Time { return fixedNow }

func okResult(id, hash, content string) *Result {
	return &Result{
		CustomID: id, Status: StatusOK, Provider: "openai", Model: "gpt-4o-mini", Content: content,
		FinishReason: "stop", Usage: &provider.Usage{InputTokens: 31, OutputTokens: 120},
		CostUSD: 0.0000766, Attempts: 1, LatencyMS: 812, RequestHash: hash, RequestID: "req_" + id,
		Metadata: json.RawMessage(`{"k":"v"}`),
	}
}

func errResult(id, hash string, status int) *Result {
	return &Result{
		CustomID: id, Status: StatusError, Attempts: 6, RequestHash: hash,
		Error: &ErrorInfo{Type: "rate_limit", Message: "too many requests", StatusCode: status},
	}
}

// writeResults appends rs to path through OpenAppend and a Writer, and closes the file.
func writeResults(t testing.TB, path string, format Format, rs ...*Result) {
	t.Helper()
	f, err := OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(f, format, WithClock(fixedClock))
	for _, r := range rs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appendBytes(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// splitLines returns the lines of b, each without its '\n'; b must end in '\n'.
func splitLines(t testing.TB, b []byte) []string {
	t.Helper()
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("content does not end in a newline: %q", tailOf(b))
	}
	return strings.Split(string(b[:len(b)-1]), "\n")
}

// assertValidJSONL checks that every line of path is a JSON object and the file ends in '\n'.
func assertValidJSONL(t testing.TB, path string) []string {
	t.Helper()
	lines := splitLines(t, readFile(t, path))
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s:%d: %v: %q", path, i+1, err, l)
		}
	}
	return lines
}

func tailOf(b []byte) []byte {
	if len(b) > 80 {
		return b[len(b)-80:]
	}
	return b
}

func outPath(t testing.TB) string { return filepath.Join(t.TempDir(), "out.jsonl") }

func mustEqualBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, tailOf(got), tailOf(want))
	}
}
