package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestScanMissingFileIsEmpty(t *testing.T) {
	c, err := Scan(outPath(t), FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lines != 0 || c.IDs != 0 || c.Done("a", "h") {
		t.Fatalf("%+v", c)
	}
	var nilc *Checkpoint
	if nilc.Done("a", "h") {
		t.Fatal("nil checkpoint says done")
	}
}

func TestScanLastLineDecides(t *testing.T) {
	path := outPath(t)
	writeResults(t, path, FormatDefault,
		okResult("a", "ha", "x"),
		errResult("b", "hb", 500), // error, then ok
		okResult("c", "hc", "x"),  // ok, then error
		okResult("b", "hb", "x"),
		errResult("c", "hc", 400),
		okResult("d", "hd-old", "x"), // ok, but the prompt changed since
	)
	c, err := Scan(path, FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, hash string
		want     bool
	}{
		{"a", "ha", true},
		{"a", "ha2", false}, // changed hash
		{"b", "hb", true},
		{"c", "hc", false},
		{"d", "hd-old", true},
		{"d", "hd-new", false},
		{"e", "ha", false},
		{"", "", false},
	} {
		if got := c.Done(tc.id, tc.hash); got != tc.want {
			t.Errorf("Done(%q, %q) = %v", tc.id, tc.hash, got)
		}
	}
	got := [...]int{c.Lines, c.OKLines, c.ErrorLines, c.Superseded, c.IDs, c.DoneIDs, c.TornLine}
	if want := [...]int{6, 4, 2, 2, 4, 3, 0}; got != want {
		t.Fatalf("lines, ok, error, superseded, ids, done ids, torn = %v, want %v", got, want)
	}
}

func TestScanRepairsTornLastLine(t *testing.T) {
	full, _ := json.Marshal(okResult("c", "hc", "complete"))
	cases := map[string][]byte{
		"half a line":              full[:len(full)/2],
		"whole JSON, no newline":   full,
		"invalid JSON at EOF":      append(bytes.Clone(full[:20]), '\n'),
		"zeros after a crash":      make([]byte, 4096),
		"garbage then blank lines": []byte("{\"custom_id\":\"c\",\"sta\n\n  \n"),
		"spaces without a newline": []byte("   "),
	}
	for name, tail := range cases {
		t.Run(name, func(t *testing.T) {
			path := outPath(t)
			writeResults(t, path, FormatDefault, okResult("a", "ha", "x"), errResult("b", "hb", 500))
			good := readFile(t, path)
			appendBytes(t, path, tail)

			c, err := Scan(path, FormatDefault)
			if err != nil {
				t.Fatal(err)
			}
			if c.TornLine != 3 || c.TornBytes != int64(len(tail)) || c.Lines != 2 {
				t.Fatalf("torn line %d (%d bytes), lines %d; want 3 (%d bytes), 2", c.TornLine, c.TornBytes, c.Lines, len(tail))
			}
			if c.Done("c", "hc") {
				t.Fatal("the torn line counts as done")
			}
			mustEqualBytes(t, "file after repair", readFile(t, path), good)

			writeResults(t, path, FormatDefault, okResult("c", "hc", "again"))
			if n := len(assertValidJSONL(t, path)); n != 3 {
				t.Fatalf("%d lines after appending", n)
			}
			c, err = Scan(path, FormatDefault)
			if err != nil {
				t.Fatal(err)
			}
			if c.TornLine != 0 || c.Lines != 3 || !c.Done("c", "hc") {
				t.Fatalf("rescan: %+v", c)
			}
		})
	}
}

func TestScanRejectsBrokenLinesInTheMiddle(t *testing.T) {
	ok1, _ := json.Marshal(okResult("a", "h", "x"))
	ok2, _ := json.Marshal(okResult("b", "h", "x"))
	cases := []struct {
		name    string
		content string
		format  Format
		wantErr string
	}{
		{"garbage", fmt.Sprintf("%s\nnot json\n%s\n", ok1, ok2), FormatDefault, "out.jsonl:2: invalid JSON"},
		{"garbage after blank lines", fmt.Sprintf("\n%s\n\n{\"custom_id\":\n%s\n", ok1, ok2), FormatDefault, "out.jsonl:4: invalid JSON"},
		{"two torn lines", fmt.Sprintf("%s\n{\"custom\n{\"cu", ok1), FormatDefault, "out.jsonl:2: invalid JSON"},
		{"no custom_id", fmt.Sprintf("%s\n{\"status\":\"ok\"}\n", ok1), FormatDefault, "out.jsonl:2: result line without custom_id"},
		{"bad status", fmt.Sprintf("%s\n{\"custom_id\":\"z\",\"status\":\"fine\"}\n", ok1), FormatDefault, `out.jsonl:2: invalid status "fine"`},
		{"not an object", fmt.Sprintf("%s\n[1,2]\n%s\n", ok1, ok2), FormatDefault, "out.jsonl:2: not a result line"},
		{"default read as openai", fmt.Sprintf("%s\n", ok1), FormatOpenAI, "out.jsonl:1: line in default format"},
		// A well-formed line in the wrong format is reported even without its newline, never cut.
		{"wrong format, no newline", string(ok1), FormatOpenAI, "out.jsonl:1: line in default format"},
		{"openai read as default", `{"id":"batch_req_1","custom_id":"a","response":null,"error":{"code":"x","message":"y"}}` + "\n", FormatDefault, "out.jsonl:1: line in openai format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := outPath(t)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Scan(path, tc.format)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "results: "+path+":") {
				t.Fatalf("error %q does not name the file", err)
			}
			mustEqualBytes(t, "file after a failed scan", readFile(t, path), []byte(tc.content))
		})
	}
}

func TestScanLongLinesCRLFAndBOM(t *testing.T) {
	path := outPath(t)
	big := strings.Repeat("é", 3<<20) // 6 MiB, far beyond the read buffer
	b1, _ := json.Marshal(okResult("a", "ha", big))
	b2, _ := json.Marshal(errResult("b", "hb", 400))
	content := "\xef\xbb\xbf" + string(b1) + "\r\n\r\n" + string(b2) + "\r\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Scan(path, FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lines != 2 || !c.Done("a", "ha") || c.Done("b", "hb") || c.TornLine != 0 {
		t.Fatalf("%+v", c)
	}
}

func TestScanOpenAIRoundTrip(t *testing.T) {
	path := outPath(t)
	writeResults(t, path, FormatOpenAI,
		okResult("a", "ha", "x"),
		errResult("b", "hb", 429), // HTTP error: response with status_code 429
		errResult("c", "hc", 0),   // no response: top-level error
		okResult("d", "hd", "x"),
		errResult("d", "hd", 500), // ok then error
		errResult("e", "he", 0),
		okResult("e", "he", "x"), // error then ok
	)
	lines := assertValidJSONL(t, path)
	if len(lines) != 7 {
		t.Fatalf("%d lines", len(lines))
	}
	c, err := Scan(path, FormatOpenAI)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"a": true, "b": false, "c": false, "d": false, "e": true} {
		if got := c.Done(id, "h"+id); got != want {
			t.Errorf("Done(%s) = %v", id, got)
		}
	}
	if c.Done("a", "hb") {
		t.Error("Done with another hash")
	}
	got := [...]int{c.Lines, c.OKLines, c.ErrorLines, c.Superseded, c.IDs, c.DoneIDs}
	if want := [...]int{7, 3, 4, 2, 5, 2}; got != want {
		t.Fatalf("lines, ok, error, superseded, ids, done ids = %v, want %v", got, want)
	}

	// A torn OpenAI line is repaired like a default one.
	appendBytes(t, path, []byte(lines[0][:40]))
	c, err = Scan(path, FormatOpenAI)
	if err != nil || c.TornLine != 8 {
		t.Fatalf("torn openai line: %v, %+v", err, c)
	}
}

func TestScanMemoryDoesNotHoldIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 12 MB")
	}
	const n = 40_000
	path := outPath(t)
	pad := strings.Repeat("p", 300)
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, "{\"custom_id\":\"%s-%d\",\"status\":\"ok\",\"request_hash\":\"h\"}\n", pad, i)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	buf = bytes.Buffer{}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := Scan(path, FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perID := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	if c.IDs != n || !c.Done(fmt.Sprintf("%s-%d", pad, n-1), "h") {
		t.Fatalf("ids %d", c.IDs)
	}
	t.Logf("%.0f bytes retained per id (ids are %d bytes)", perID, len(pad)+6)
	if perID > 100 {
		t.Fatalf("%.0f bytes retained per id: the checkpoint holds the ids", perID)
	}
	runtime.KeepAlive(c)
}

func TestIDIndexCollisions(t *testing.T) {
	x := newIDIndex[int]()
	// Force "a" and "b" onto the same 64-bit key with different fingerprints.
	x.putHashed("a", 42, 1, 1)
	x.putHashed("b", 42, 2, 2)
	x.putHashed("a", 42, 1, 10)
	x.putHashed("b", 42, 2, 20)
	if v, ok := x.getHashed("a", 42, 1); !ok || v != 10 {
		t.Fatalf("a = %v, %v", v, ok)
	}
	if v, ok := x.getHashed("b", 42, 2); !ok || v != 20 {
		t.Fatalf("b = %v, %v", v, ok)
	}
	if _, ok := x.getHashed("c", 42, 3); ok {
		t.Fatal("an absent id with a colliding key was found")
	}
	if x.len() != 2 {
		t.Fatalf("len %d", x.len())
	}
	sum := 0
	x.each(func(v int) { sum += v })
	if sum != 30 {
		t.Fatalf("each saw %d", sum)
	}
}
