package request

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestValidateCapsErrorList(t *testing.T) {
	var b strings.Builder
	const bad = MaxReportedErrors + 25
	for i := range bad {
		fmt.Fprintf(&b, `{"id":"ok%d","prompt":"fine"}`+"\n", i)
		fmt.Fprintf(&b, `{"id":"bad%d","prompt":""}`+"\n", i)
	}
	n, errs := Validate(strings.NewReader(b.String()), "big.jsonl")
	if n != bad {
		t.Errorf("n = %d, want %d", n, bad)
	}
	if len(errs) != MaxReportedErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), MaxReportedErrors+1)
	}
	var le *LineError
	if !errors.As(errs[MaxReportedErrors-1], &le) || le.Line != 2*MaxReportedErrors {
		t.Errorf("last listed error = %v, want line %d", errs[MaxReportedErrors-1], 2*MaxReportedErrors)
	}
	if got, want := errs[MaxReportedErrors].Error(), "big.jsonl: and 25 more errors"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}

func TestValidateStopsAtReadError(t *testing.T) {
	boom := errors.New("connection reset")
	in := io.MultiReader(strings.NewReader(`{"id":"a","prompt":"x"}`+"\n"+`{"id":"b","prompt":""}`+"\n"), iotest.ErrReader(boom))
	n, errs := Validate(in, "in")
	if n != 1 || len(errs) != 2 || !errors.Is(errs[1], boom) {
		t.Errorf("Validate = %d, %v; want 1 request, the line-2 error, then the read error", n, errs)
	}
}

func TestValidateCleanInput(t *testing.T) {
	n, errs := Validate(strings.NewReader(`{"prompt":"a"}`+"\n\n"+`{"prompt":"b"}`+"\r\n"), "in")
	if n != 2 || len(errs) != 0 {
		t.Errorf("Validate = %d, %v; want 2 requests and no errors (ids line-1 and line-3)", n, errs)
	}
}

// dupInput has 40 requests whose ids repeat as the test says, and the lines where repeats occur.
func dupInput(t *testing.T, repeatOf map[int]int) (string, []int) {
	t.Helper()
	var b strings.Builder
	var lines []int
	for i := 1; i <= 40; i++ {
		id := fmt.Sprintf("id%d", i)
		if orig, ok := repeatOf[i]; ok {
			id = fmt.Sprintf("id%d", orig)
			lines = append(lines, i)
		}
		fmt.Fprintf(&b, `{"id":%q,"prompt":"p"}`+"\n", id)
	}
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, lines
}

func TestValidateFindsDuplicatesAcrossSpilledRuns(t *testing.T) {
	// Line 33 repeats line 2 and line 40 repeats line 2 and 17: with 3 hashes in memory they sit
	// in different runs on disk, and one in the final in-memory run.
	path, want := dupInput(t, map[int]int{17: 2, 33: 2, 40: 2, 21: 20})
	for _, memory := range []int{1, 3, 7, 1000} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		tmp := t.TempDir()
		n, errs := Validator{MemoryIDs: memory, TempDir: tmp}.Validate(context.Background(), f, "in.jsonl")
		f.Close()
		var got []int
		for _, err := range errs {
			var le *LineError
			if !errors.As(err, &le) || le.Field != "id" || !strings.Contains(le.Msg, "duplicates line") {
				t.Fatalf("memory %d: unexpected error %v", memory, err)
			}
			got = append(got, le.Line)
		}
		if n != 40 || !slices.Equal(got, want) {
			t.Errorf("memory %d: n = %d, duplicate lines %v; want 40, %v", memory, n, got, want)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("memory %d: spill files left behind: %v", memory, left)
		}
		if memory == 1 && !strings.Contains(errs[0].Error(), `"id2" duplicates line 2`) {
			t.Errorf("first error = %v, want it to name id2 and line 2", errs[0])
		}
	}
}

func TestValidateCountsDuplicatesWithoutSeeker(t *testing.T) {
	path, _ := dupInput(t, map[int]int{17: 2, 33: 2, 40: 5})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, errs := Validator{MemoryIDs: 4, TempDir: t.TempDir()}.Validate(context.Background(), iotest.HalfReader(strings.NewReader(string(b))), "stdin") // not an io.Seeker
	if len(errs) != 1 || errs[0].Error() != "stdin: 3 lines repeat an earlier id (every id must be unique)" {
		t.Errorf("errs = %v", errs)
	}
}

func TestValidateSpillNeedsWritableTempDir(t *testing.T) {
	path, _ := dupInput(t, nil)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, errs := Validator{MemoryIDs: 8, TempDir: filepath.Join(t.TempDir(), "missing")}.Validate(context.Background(), f, "in.jsonl")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "set TMPDIR to a writable directory") {
		t.Errorf("errs = %v, want one error saying the temporary directory is not writable", errs)
	}
}

func TestValidateRunsCheckOnEveryRequest(t *testing.T) {
	in := `{"id":"a","prompt":"x","model":"gpt-x"}` + "\n" + `{"id":"b","prompt":""}` + "\n" + `{"id":"c","prompt":"y"}` + "\n"
	var seen []string
	n, errs := Validator{Check: func(r *Request) error {
		seen = append(seen, r.ID)
		if r.Model != "" {
			return fmt.Errorf("model %q is not configured", r.Model)
		}
		return nil
	}}.Validate(context.Background(), strings.NewReader(in), "in")
	if n != 2 || !slices.Equal(seen, []string{"a", "c"}) || len(errs) != 2 ||
		errs[0].Error() != `in:1: model "gpt-x" is not configured` || lineOf(errs[1]) != 2 {
		t.Errorf("n = %d, checked %v, errs %v; want 2, [a c], the check's line-1 error then line 2's", n, seen, errs)
	}
}

func TestValidateNamesTheFirstDuplicatesAndCountsTheRest(t *testing.T) {
	var b strings.Builder
	const ids, copies = 150, 2 // 300 lines repeat an earlier id
	for range copies + 1 {
		for i := range ids {
			fmt.Fprintf(&b, `{"id":"id%d","prompt":"p"}`+"\n", i)
		}
	}
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, memory := range []int{1000, 64} { // 64: spilled, and too many duplicated ids to name the first
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, errs := Validator{MemoryIDs: memory, TempDir: t.TempDir()}.Validate(context.Background(), f, "in.jsonl")
		f.Close()
		if len(errs) != MaxReportedErrors+1 {
			t.Fatalf("memory %d: got %d errors, want %d", memory, len(errs), MaxReportedErrors+1)
		}
		for i, err := range errs[:MaxReportedErrors] {
			if want := fmt.Sprintf(`in.jsonl:%d: id: "id%d" duplicates line %d (every id must be unique)`, ids+i+1, i, i+1); memory == 1000 && err.Error() != want {
				t.Fatalf("error %d = %q, want %q", i, err, want)
			}
		}
		if got := errs[MaxReportedErrors].Error(); got != "in.jsonl: and 200 more errors" {
			t.Errorf("memory %d: summary = %q", memory, got)
		}
	}
}
