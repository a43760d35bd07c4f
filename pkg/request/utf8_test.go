package request

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestInvalidUTF8IsALineErrorNamingTheField(t *testing.T) {
	input := strings.Join([]string{
		`{"id":"ok","prompt":"caf` + "\u00e9" + `"}`, // valid multi-byte UTF-8 passes
		`{"id":"a","prompt":"caf` + "\xe9" + `"}`,    // Latin-1 é
		`{"id":"b","messages":[{"role":"system","content":"x"},{"role":"user","content":"bad ` + "\xff\xfe" + `"}]}`,
		`{"custom_id":"c","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"` + "\xc3" + `"}]}]}}`,
		`{"id":"d","prompt":"p","metadata":{"note":"` + "\x80" + `"}}`,
		`{"id":"e","prompt":"p","metadata":{"k` + "\xa0" + `":1}}`,
		`{"id":"f` + "\xed\xa0\x80" + `","prompt":"surrogate"}`, // CESU-8 surrogate: not UTF-8
		`{"id":"g","prompt":"still fine"}`,
	}, "\n") + "\n"
	want := []struct {
		line  int
		field string
	}{
		{2, "prompt"},
		{3, "messages[1].content"},
		{4, "body.messages[0].content[0].text"},
		{5, "metadata.note"},
		{6, "metadata (a key)"},
		{7, "id"},
	}
	r := NewReader(strings.NewReader(input), "in.jsonl")
	var ids []string
	var errs []*LineError
	for {
		req, err := r.Next()
		if err == io.EOF {
			break
		}
		var le *LineError
		if errors.As(err, &le) {
			errs = append(errs, le)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, req.ID)
	}
	if strings.Join(ids, ",") != "ok,g" {
		t.Errorf("valid requests %v, want ok and g", ids)
	}
	if len(errs) != len(want) {
		t.Fatalf("%d errors, want %d: %v", len(errs), len(want), errs)
	}
	for i, w := range want {
		e := errs[i]
		if e.Line != w.line || e.Field != w.field || !strings.Contains(e.Error(), "invalid UTF-8") || !strings.HasPrefix(e.Error(), "in.jsonl:") {
			t.Errorf("error %d = %q (line %d, field %q), want line %d field %q", i, e, e.Line, e.Field, w.line, w.field)
		}
	}
}
