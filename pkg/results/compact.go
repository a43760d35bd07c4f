package results

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Compact rewrites the output at path (in format) so that it holds exactly one line per custom_id,
// that id's LAST line, and only for ids where keep(id) is true (a nil keep keeps every id). keep is
// called exactly once per distinct id, before anything is written. Surviving lines keep their
// bytes and their relative order. A torn last line is dropped. removed counts the result lines
// dropped (a torn last line counts as one).
//
// Compaction is atomic: the new content goes to a temporary file in the same directory, which is
// fsync'd, given the original's permissions and renamed over the original, and then the directory
// is fsync'd. On any error, or a panic in keep, the original is untouched and the temporary file is
// removed. When nothing needs removing, the file is not rewritten (removed is 0). Memory is
// bounded as for Scan (two streaming passes). Nothing may write the file while Compact runs; a
// change between the passes is detected where possible and reported as an error.
//
// Compact never replaces a file another process holds: a symlinked path is compacted at its target,
// under the output's lock (see Lock), and when another process holds that lock Compact returns a
// *LockedError without touching anything. A caller holding the lock itself uses OutputLock.Compact
// (Compact also accepts a lock held by this process).
func Compact(path string, format Format, keep func(id string) bool) (removed int, err error) {
	target, err := resolve(path)
	if err != nil {
		return 0, fmt.Errorf("results: compact %s: %w", path, err)
	}
	l, err := acquire(target, holderPrefix()+", compacting")
	var locked *LockedError
	if errors.As(err, &locked) && heldByUs(target+".lock") {
		return compact(target, format, keep, compactHooks{})
	}
	if err != nil {
		return 0, err
	}
	defer l.Unlock()
	return compact(target, format, keep, compactHooks{})
}

// compactHooks lets tests interfere with a compaction midway.
type compactHooks struct {
	afterIndex func()                    // runs between the two passes
	wrapTemp   func(io.Writer) io.Writer // wraps the temporary file
}

type compactEntry struct {
	line int  // 1-based number of the id's last line
	keep bool // keep(id)
}

func compact(path string, format Format, keep func(string) bool, hooks compactHooks) (removed int, err error) {
	if keep == nil {
		keep = func(string) bool { return true }
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("results: compact: %w", err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("results: compact: %w", err)
	}

	// Pass 1: the last line of every id, and whether to keep it.
	idx := newIDIndex[compactEntry]()
	lines := 0
	tail, err := walk(f, path, format, func(l *line) error {
		lines++
		key, fp := idx.hashes(l.id)
		e, seen := idx.getHashed(l.id, key, fp)
		if !seen {
			e.keep = keep(l.id)
		}
		e.line = l.no
		idx.putHashed(l.id, key, fp, e)
		return nil
	})
	if err != nil {
		return 0, err
	}
	kept := 0
	idx.each(func(e compactEntry) {
		if e.keep {
			kept++
		}
	})
	removed = lines - kept
	if tail.line > 0 {
		removed++
	}
	if removed == 0 {
		return 0, nil
	}
	if hooks.afterIndex != nil {
		hooks.afterIndex()
	}

	// Pass 2: copy the surviving lines to a temporary file.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("results: compact: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".compact-*")
	if err != nil {
		return 0, fmt.Errorf("results: compact %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	if hooks.wrapTemp != nil {
		w = hooks.wrapTemp(tmp)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	copied := 0
	_, err = walk(f, path, format, func(l *line) error {
		if e, _ := idx.get(l.id); e.line != l.no || !e.keep {
			return nil
		}
		copied++
		_, err := bw.Write(l.raw)
		return err
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return 0, fmt.Errorf("results: compact %s: write %s: %w", path, tmp.Name(), err)
	}
	after, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("results: compact: %w", err)
	}
	if copied != kept || !os.SameFile(before, after) || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return 0, fmt.Errorf("results: compact %s: %w", path, errChanged)
	}
	if err := tmp.Chmod(before.Mode().Perm()); err != nil {
		return 0, fmt.Errorf("results: compact: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("results: compact: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("results: compact: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("results: compact: %w", err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return removed, fmt.Errorf("results: compact %s: %w", path, err)
	}
	return removed, nil
}

var errChanged = errors.New("file changed while compacting (is another run writing it?)")
