package results

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// OpenAppend opens the output at path for appending, creating it (mode 0644 before umask) if
// needed: O_APPEND|O_CREATE|O_WRONLY, so every Writer.Write lands at the end of the file. Scan the
// file first to repair a torn last line. "-" is not special here: writing to stdout (and not
// resuming) is the engine's job.
func OpenAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return f, nil
}

// MoveAside implements --fresh: it renames an existing output at path to
// "PATH.YYYYMMDD-HHMMSS.bak" (now formatted in its own location), never deleting or overwriting
// anything; if that name is taken, "-1", "-2", ... is added before ".bak". It returns the new
// path, or "" and no error when path does not exist. The directory is fsync'd after the rename.
func MoveAside(path string, now time.Time) (newPath string, err error) {
	if _, err := os.Lstat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("results: move aside: %w", err)
	}
	base := path + "." + now.Format("20060102-150405")
	for i := 0; ; i++ {
		newPath = base + ".bak"
		if i > 0 {
			newPath = fmt.Sprintf("%s-%d.bak", base, i)
		}
		_, err := os.Lstat(newPath)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("results: move aside: %w", err)
		}
		if i >= 1000 {
			return "", fmt.Errorf("results: move aside %s: too many backups named %s*.bak", path, base)
		}
	}
	if err := os.Rename(path, newPath); err != nil {
		return "", fmt.Errorf("results: move aside: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return newPath, fmt.Errorf("results: move aside %s: %w", path, err)
	}
	return newPath, nil
}

// syncDir fsyncs directory dir so that a rename in it is durable. Windows cannot fsync directories;
// there it does nothing.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
