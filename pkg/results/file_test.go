package results

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/testkit"
)

func TestMoveAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.results.jsonl")
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

	if got, err := MoveAside(path, now); got != "" || err != nil {
		t.Fatalf("missing file: %q, %v", got, err)
	}

	for i, want := range []string{"out.results.jsonl.20250304-050607.bak", "out.results.jsonl.20250304-050607-1.bak"} {
		content := []byte{'a' + byte(i), '\n'}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := MoveAside(path, now)
		if err != nil {
			t.Fatal(err)
		}
		if got != filepath.Join(dir, want) {
			t.Fatalf("moved to %q, want %q", got, want)
		}
		mustEqualBytes(t, "backup", readFile(t, got), content)
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("original still there: %v", err)
		}
	}
	if names := testkit.DirNames(t, dir); !slices.Equal(names, []string{"out.results.jsonl.20250304-050607-1.bak", "out.results.jsonl.20250304-050607.bak"}) {
		t.Fatalf("directory holds %v", names)
	}
}

func TestOpenAppend(t *testing.T) {
	path := outPath(t)
	f, err := OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("one\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o644 != 0 || perm&0o600 != 0o600 {
		t.Errorf("mode %v, want 0644 less the umask", perm)
	}

	f, err = OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil { // O_APPEND ignores the offset
		t.Fatal(err)
	}
	if _, err := f.WriteString("two\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mustEqualBytes(t, "content", readFile(t, path), []byte("one\ntwo\n"))

	if _, err := OpenAppend(filepath.Join(path, "sub")); err == nil {
		t.Fatal("opening below a file succeeded")
	}
}
