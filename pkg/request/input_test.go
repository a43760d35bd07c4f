package request

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readInput(t *testing.T, in *Input) string {
	t.Helper()
	rc, err := in.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpenInputStdinSpool(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	const data = `{"id":"a","prompt":"from stdin"}` + "\n"
	in, err := OpenInput("-", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if in.Name() != "stdin" {
		t.Errorf("Name() = %q, want stdin", in.Name())
	}
	for pass := range 2 { // validation and the run each read it
		if got := readInput(t, in); got != data {
			t.Errorf("pass %d read %q, want %q", pass, got, data)
		}
	}
	spooled, _ := filepath.Glob(filepath.Join(tmp, "llmbatch-stdin-*"))
	if len(spooled) != 1 {
		t.Fatalf("spool files = %v, want one in TMPDIR", spooled)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := os.Stat(spooled[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("spool still exists after Close: %v", err)
	}
}

func TestOpenInputFile(t *testing.T) {
	path := writeInput(t, `{"prompt":"x"}`)
	in, err := OpenInput(path, strings.NewReader("ignored"))
	if err != nil {
		t.Fatal(err)
	}
	if in.Name() != path || readInput(t, in) != `{"prompt":"x"}` {
		t.Errorf("input %q did not read back the file", in.Name())
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Close removed the user's file: %v", err)
	}
}

func TestOpenInputErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.jsonl")
	if _, err := OpenInput(missing, nil); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want ErrNotExist naming %s", err, missing)
	}
	if _, err := OpenInput(dir, nil); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v, want an error saying it is a directory", err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if _, err := OpenInput("-", errReader{}); err == nil || !strings.Contains(err.Error(), "stdin closed") {
		t.Errorf("failing stdin: %v, want the read error", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("a failed spool left %d files behind", len(left))
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("stdin closed") }
