package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/llmbatch/llmbatch/internal/testkit"
)

func TestCompactKeepsTheLastLinePerID(t *testing.T) {
	path := outPath(t)
	writeResults(t, path, FormatDefault,
		okResult("a", "ha", "first"),
		errResult("b", "hb", 500),
		okResult("a", "ha", "second"),
		okResult("c", "hc", "only"),
		okResult("b", "hb", "recovered"),
		errResult("a", "ha", 400),
	)
	orig := splitLines(t, readFile(t, path))
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	removed, err := Compact(path, FormatDefault, nil)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 3 {
		t.Fatalf("removed %d, want 3", removed)
	}
	got := splitLines(t, readFile(t, path))
	if want := []string{orig[3], orig[4], orig[5]}; !slices.Equal(got, want) {
		t.Fatalf("after compaction:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c, err := Scan(path, FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lines != 3 || c.IDs != 3 || c.Superseded != 0 || c.Done("a", "ha") || !c.Done("b", "hb") {
		t.Fatalf("rescan: %+v", c)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the original 0600", fi.Mode().Perm())
	}
	if names := testkit.DirNames(t, filepath.Dir(path)); !slices.Equal(names, []string{"out.jsonl"}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestCompactKeepDecides(t *testing.T) {
	path := outPath(t)
	writeResults(t, path, FormatOpenAI,
		okResult("a", "ha", "x"), okResult("gone", "hg", "x"), okResult("b", "hb", "x"),
		okResult("gone", "hg", "y"), okResult("a", "ha", "y"))
	calls := map[string]int{}
	removed, err := Compact(path, FormatOpenAI, func(id string) bool {
		calls[id]++
		return id != "gone"
	})
	if err != nil {
		t.Fatal(err)
	}
	if removed != 3 {
		t.Fatalf("removed %d, want 3", removed)
	}
	for id, n := range calls {
		if n != 1 {
			t.Errorf("keep(%q) called %d times", id, n)
		}
	}
	if len(calls) != 3 {
		t.Errorf("keep called for %v", calls)
	}
	var ids []string
	for _, l := range assertValidJSONL(t, path) {
		var v struct {
			CustomID string `json:"custom_id"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.CustomID)
	}
	if !slices.Equal(ids, []string{"b", "a"}) {
		t.Fatalf("ids after compaction %v, want [b a]", ids)
	}
}

func TestCompactWithNothingToRemoveDoesNotRewrite(t *testing.T) {
	path := outPath(t)
	writeResults(t, path, FormatDefault, okResult("a", "ha", "x"), errResult("b", "hb", 0))
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	content := readFile(t, path)
	removed, err := Compact(path, FormatDefault, func(string) bool { return true })
	if err != nil || removed != 0 {
		t.Fatalf("removed %d, %v", removed, err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("the file was replaced")
	}
	mustEqualBytes(t, "content", readFile(t, path), content)
}

func TestCompactDropsATornTail(t *testing.T) {
	path := outPath(t)
	writeResults(t, path, FormatDefault, okResult("a", "ha", "x"))
	good := readFile(t, path)
	appendBytes(t, path, good[:10])
	removed, err := Compact(path, FormatDefault, nil)
	if err != nil || removed != 1 {
		t.Fatalf("removed %d, %v", removed, err)
	}
	mustEqualBytes(t, "content", readFile(t, path), good)
}

// failAfter passes n bytes to w, then fails with ENOSPC.
type failAfter struct {
	w io.Writer
	n int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		m, _ := f.w.Write(p[:f.n])
		f.n = 0
		return m, syscall.ENOSPC
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestCompactFailureLeavesTheOriginal(t *testing.T) {
	setup := func(t *testing.T) (string, []byte) {
		path := outPath(t)
		var rs []*Result
		for i := range 2000 { // more than the copy buffer, so a failure happens midway
			rs = append(rs, okResult(string(rune('a'+i%50)), "h", strings.Repeat("x", 300)))
		}
		writeResults(t, path, FormatDefault, rs...)
		return path, readFile(t, path)
	}
	checkIntact := func(t *testing.T, path string, want []byte) {
		t.Helper()
		mustEqualBytes(t, "original", readFile(t, path), want)
		if names := testkit.DirNames(t, filepath.Dir(path)); !slices.Equal(names, []string{"out.jsonl"}) {
			t.Fatalf("directory holds %v, want only the original", names)
		}
	}

	t.Run("keep panics", func(t *testing.T) {
		path, orig := setup(t)
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			n := 0
			_, _ = Compact(path, FormatDefault, func(string) bool {
				if n++; n == 30 {
					panic("keep failed")
				}
				return true
			})
		}()
		checkIntact(t, path, orig)
	})

	t.Run("disk full while copying", func(t *testing.T) {
		path, orig := setup(t)
		var copied *failAfter
		_, err := compact(path, FormatDefault, func(id string) bool { return id != "a" }, compactHooks{
			wrapTemp: func(w io.Writer) io.Writer { copied = &failAfter{w: w, n: 5000}; return copied },
		})
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
			t.Fatalf("error %v: want ENOSPC naming %s", err, path)
		}
		if copied == nil || copied.n != 0 {
			t.Fatal("the failure did not happen while copying")
		}
		checkIntact(t, path, orig)
	})

	t.Run("file appended between passes", func(t *testing.T) {
		path, orig := setup(t)
		extra, _ := json.Marshal(okResult("late", "h", "x"))
		extra = append(extra, '\n')
		_, err := compact(path, FormatDefault, nil, compactHooks{
			afterIndex: func() { appendBytes(t, path, extra) },
		})
		if !errors.Is(err, errChanged) {
			t.Fatalf("error %v, want errChanged", err)
		}
		checkIntact(t, path, append(bytes.Clone(orig), extra...))
	})

	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores directory permissions")
		}
		path, orig := setup(t)
		dir := filepath.Dir(path)
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		if _, err := Compact(path, FormatDefault, nil); !errors.Is(err, os.ErrPermission) {
			t.Fatalf("error %v, want permission denied", err)
		}
		checkIntact(t, path, orig)
	})

	t.Run("broken line in the middle", func(t *testing.T) {
		path, orig := setup(t)
		broken := append(bytes.Clone(orig[:100]), '\n')
		broken = append(broken, orig...)
		if err := os.WriteFile(path, broken, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Compact(path, FormatDefault, nil); err == nil || !strings.Contains(err.Error(), "out.jsonl:1:") {
			t.Fatalf("error %v, want one naming line 1", err)
		}
		checkIntact(t, path, broken)
	})
}
