package request

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantErr is one expected *LineError: its line, its field and a fragment of its message.
type wantErr struct {
	line  int
	field string
	msg   string
}

func TestValidateBadInputs(t *testing.T) {
	tests := []struct {
		file  string
		valid int // requests that parse despite the errors
		want  []wantErr
	}{
		{"invalid_json.jsonl", 0, []wantErr{
			{1, "", "invalid JSON at byte 23: unexpected end of JSON input"},
			{2, "", "invalid JSON at byte 25: invalid character 'h'"},
			{3, "", "invalid character 't' after top-level value"},
			{4, "", "line is a JSON array, not an object"},
			{5, "", "line is null"},
		}},
		{"messages.jsonl", 0, []wantErr{
			{1, "messages", "missing"},
			{2, "messages", "is empty"},
			{3, "messages", "must be an array of messages, got string"},
			{4, "messages[2].role", `unknown role "bot"`},
			{5, "messages[0].role", "missing"},
			{6, "messages", `has no "user" message`},
			{7, "messages[0].content", "is empty"},
			{8, "messages[0].content", "must be a string or an array of parts, got 42"},
			{9, "messages[1].tool_call_id", "missing"},
			{10, "messages[0].tone", "unknown field"},
			{11, "messages[0].content", "has no type"},
			{12, "messages[0]", "must be a JSON object, got string"},
		}},
		{"params.jsonl", 0, []wantErr{
			{1, "max_tokens", `must be a positive whole number, got string "abc"`},
			{2, "max_tokens", "got -5"},
			{3, "max_tokens", "got 1.5"},
			{4, "temperature", "must be a number from 0 to 2, got 3"},
			{5, "top_p", `got string "high"`},
			{6, "stop", "must be a string or an array of strings, got 5"},
			{7, "stop[1]", "is empty"},
			{8, "response_format", "must be an object"},
			{9, "tools", "must be an array of tool definitions, got an object"},
			{10, "category", `unknown category "huge"`},
			{11, "temprature", "unknown field"},
			{12, "model", "is empty"},
			{13, "max_completion_tokens", "is 200 but max_tokens is 100"},
			{14, "stream", "llmbatch reads whole responses"},
			{15, "n", "is 3 (llmbatch keeps one answer per prompt"},
		}},
		{"shapes.jsonl", 0, []wantErr{
			{1, "prompt", "is empty"},
			{2, "prompt", `given together with "messages"`},
			{3, "prompt", "must be a string, got an array"},
			{4, "id", "is empty"},
			{5, "id", "must be a string, got 7"},
			{6, "system", `not allowed with "messages"`},
		}},
		{"batch.jsonl", 0, []wantErr{
			{1, "url", `is "/v1/embeddings"`},
			{2, "method", `is "GET"`},
			{3, "body", "missing"},
			{4, "body.max_tokens", `got string "many"`},
			{5, "body.messages[1].role", `unknown role "robot"`},
			{6, "category", `put request fields inside "body"`},
			{7, "body", "must be a JSON object, got an array"},
		}},
		{"duplicates.jsonl", 6, []wantErr{
			{4, "custom_id", `"a" duplicates line 1`},
			{6, "id", `"line-5" duplicates line 5`},
			{7, "id", `"b" duplicates line 2`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n, errs := Validate(f, path)
			if n != tt.valid {
				t.Errorf("n = %d, want %d", n, tt.valid)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(errs), len(tt.want), joinErrs(errs))
			}
			for i, w := range tt.want {
				var le *LineError
				if !errors.As(errs[i], &le) {
					t.Fatalf("error %d is %T, want *LineError: %v", i, errs[i], errs[i])
				}
				if le.File != path || le.Line != w.line || le.Field != w.field || !strings.Contains(le.Msg, w.msg) {
					t.Errorf("error %d = %q, want line %d field %q containing %q", i, errs[i], w.line, w.field, w.msg)
				}
				prefix := fmt.Sprintf("%s:%d: ", path, w.line)
				if w.field != "" {
					prefix += w.field + ": "
				}
				if !strings.HasPrefix(errs[i].Error(), prefix) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i], prefix)
				}
			}
		})
	}
}

func joinErrs(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}
