package results

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/testkit"
)

func TestLockIsExclusiveAndNamesTheHolder(t *testing.T) {
	out := outPath(t)
	l, err := Lock(out, "", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(out, "", fixedNow)
	var locked *LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second Lock: %v, want a *LockedError", err)
	}
	for _, want := range []string{fmt.Sprintf("pid %d", os.Getpid()), "on host ", "2025-03-04T05:06:07Z", out} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(out + ".lock"); !os.IsNotExist(err) {
		t.Errorf("lock file left after Unlock: %v", err)
	}
	l2, err := Lock(out, "", fixedNow)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l2.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
}

func TestLockRefusesTheInputAsOutput(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "prompts.jsonl")
	if err := os.WriteFile(input, []byte(`{"id":"a","prompt":"hi"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.jsonl")
	if err := os.Symlink("prompts.jsonl", link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.jsonl")
	if err := os.Link(input, hard); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ output, input string }{
		{input, input},
		{link, input},                     // the output is a symlink to the input
		{input, link},                     // the input is given through a symlink
		{hard, input},                     // a hard link is the same file
		{dir + "/./prompts.jsonl", input}, // another spelling
	} {
		_, err := Lock(tc.output, tc.input, fixedNow)
		if !errors.Is(err, ErrSameFile) {
			t.Errorf("Lock(%s, input %s) = %v, want ErrSameFile", tc.output, tc.input, err)
		}
	}
	if got := string(readFile(t, input)); got != `{"id":"a","prompt":"hi"}`+"\n" {
		t.Errorf("the input changed: %q", got)
	}
	if names := testkit.DirNames(t, dir); len(names) != 3 {
		t.Errorf("files created next to the input: %v", names)
	}
	l, err := Lock(filepath.Join(dir, "other.jsonl"), input, fixedNow)
	if err != nil {
		t.Fatalf("a different output: %v", err)
	}
	l.Unlock()
}

// realTempDir is t.TempDir with its symlinks resolved (macOS's /tmp is one), for comparing paths.
func realTempDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLockedSymlinkIsCompactedAtItsTarget(t *testing.T) {
	dir := realTempDir(t)
	target := filepath.Join(dir, "real", "out.jsonl")
	if err := os.Mkdir(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	writeResults(t, target, FormatDefault, errResult("a", "h1", 500), okResult("b", "h2", "B"), okResult("a", "h1", "A"))
	link := filepath.Join(dir, "out.jsonl")
	if err := os.Symlink(filepath.Join("real", "out.jsonl"), link); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(link, "", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if l.Path() != target {
		t.Errorf("Path() = %s, want the target %s", l.Path(), target)
	}
	if _, err := os.Stat(target + ".lock"); err != nil {
		t.Errorf("the lock is not next to the target: %v", err)
	}
	// Another spelling of the same output (the target itself) is the same lock.
	if _, err := Lock(target, "", fixedNow); err == nil {
		t.Error("the target could be locked while its symlink is held")
	}
	removed, err := l.Compact(FormatDefault, nil)
	if err != nil || removed != 1 {
		t.Fatalf("Compact = %d, %v; want 1 line removed", removed, err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the output is no longer a symlink: %v %v", fi, err)
	}
	lines := assertValidJSONL(t, link)
	if len(lines) != 2 || !strings.Contains(lines[0], `"b"`) || !strings.Contains(lines[1], `"status":"ok"`) {
		t.Errorf("compacted through the link: %q", lines)
	}
}

func TestLockFollowsADanglingSymlink(t *testing.T) {
	dir := realTempDir(t)
	link := filepath.Join(dir, "out.jsonl")
	if err := os.Symlink(filepath.Join("later", "results.jsonl"), link); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(link, "", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if want := filepath.Join(dir, "later", "results.jsonl"); l.Path() != want {
		t.Errorf("Path() = %s, want %s", l.Path(), want)
	}
}

func TestCompactRefusesAnOutputAnotherProcessHolds(t *testing.T) {
	out := outPath(t)
	writeResults(t, out, FormatDefault, errResult("a", "h1", 500), okResult("a", "h1", "A"))
	before := readFile(t, out)
	// The lock as another process would hold it: its pid is not ours.
	other, err := acquire(out, "pid 1 on host elsewhere, started 2025-03-04T05:06:07Z")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compact(out, FormatDefault, nil)
	var locked *LockedError
	if !errors.As(err, &locked) || !strings.Contains(err.Error(), "pid 1 on host elsewhere") {
		t.Fatalf("Compact while another process holds the output: %v, want a *LockedError naming it", err)
	}
	mustEqualBytes(t, "the held output", readFile(t, out), before)
	other.Unlock()

	// Held by this process (a run compacting its own output): allowed.
	mine, err := Lock(out, "", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := Compact(out, FormatDefault, nil); err != nil || removed != 1 {
		t.Fatalf("Compact under this process's own lock = %d, %v", removed, err)
	}
	mine.Unlock()
	if names := testkit.DirNames(t, filepath.Dir(out)); !slices.Equal(names, []string{"out.jsonl"}) {
		t.Errorf("left behind: %v", names)
	}
}

func TestLockFollowsAChainOfSymlinksAndRefusesALoop(t *testing.T) {
	dir := realTempDir(t)
	target := filepath.Join(dir, "data", "out.jsonl")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	// out.jsonl -> mid.jsonl -> data/out.jsonl, through a symlinked directory too.
	if err := os.Symlink("data", filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("d", "out.jsonl"), filepath.Join(dir, "mid.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("mid.jsonl", filepath.Join(dir, "out.jsonl")); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(filepath.Join(dir, "out.jsonl"), "", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if l.Path() != target {
		t.Errorf("Path() = %s, want %s", l.Path(), target)
	}
	l.Unlock()

	loop := filepath.Join(dir, "loop.jsonl")
	if err := os.Symlink("loop.jsonl", loop); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(loop, "", fixedNow); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("a symlink loop: %v", err)
	}
}
