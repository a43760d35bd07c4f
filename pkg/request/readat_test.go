package request

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
)

// TestRereaderReadsEveryRequestAgain: every request Reader returns is read again, identical, from its
// Line and Offset: after a BOM, across CRLF and blank lines, for a line longer than the reader's
// buffer and for a last line without a newline.
func TestRereaderReadsEveryRequestAgain(t *testing.T) {
	long := strings.Repeat("word ", 30000) // 150 KB: longer than the 64 KiB read buffer
	input := "\xEF\xBB\xBF" + `{"id":"a","prompt":"first"}` + "\r\n" +
		"\n   \n" +
		`{"id":"b","messages":[{"role":"user","content":[{"type":"text","text":"parts"}]}],"metadata":{"k":1}}` + "\n" +
		`{"id":"c","prompt":"` + long + `","max_tokens":5}` + "\n" +
		`{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"x"}],"seed":3}}`
	rr := NewRereader(strings.NewReader(input), "in.jsonl")
	rd := NewReader(strings.NewReader(input), "in.jsonl")
	n := 0
	for {
		want, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		got, err := rr.Read(want.Offset, want.Line)
		if err != nil {
			t.Fatalf("%s: %v", want.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: read again as %+v, want %+v", want.ID, got, want)
		}
	}
	if n != 4 {
		t.Fatalf("%d requests", n)
	}
}

// TestRereaderNoticesAChangedInput: an offset that now holds a blank line, or lies past the end, is
// an error naming the file and line.
func TestRereaderNoticesAChangedInput(t *testing.T) {
	rr := NewRereader(bytes.NewReader([]byte("\n\n{\"id\":\"a\",\"prompt\":\"x\"}\n")), "in.jsonl")
	if _, err := rr.Read(0, 1); err == nil || !strings.Contains(err.Error(), "in.jsonl:1: a blank line") {
		t.Errorf("blank: %v", err)
	}
	if _, err := rr.Read(100, 7); err == nil || !strings.Contains(err.Error(), "in.jsonl:7: no request at byte 100") {
		t.Errorf("past the end: %v", err)
	}
	if r, err := rr.Read(2, 3); err != nil || r.ID != "a" || r.Offset != 2 || r.Line != 3 {
		t.Errorf("line 3: %+v, %v", r, err)
	}
}
