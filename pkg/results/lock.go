package results

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// OutputLock is one run's exclusive hold on an output file: an advisory lock on the lock file next
// to it (OUTPUT.lock, OUTPUT being the symlink-resolved path), which records the holder's pid, host
// and start time. While it is held no other llmbatch process appends to, moves aside or compacts the
// output. Hold it for the whole run, compaction included, and Unlock it at the end; the kernel
// releases it if the process dies, so a crash never leaves a stale lock behind.
type OutputLock struct {
	path     string // the output, symlinks resolved
	lockPath string
	file     *os.File
}

// LockedError reports an output held by another process.
type LockedError struct {
	Output string // the output as resolved
	Holder string // what the holder wrote into the lock file: pid, host, start time
}

func (e *LockedError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "a process that has not written its details yet"
	}
	return fmt.Sprintf("%s is being written by another llmbatch run (%s); wait for it to finish or stop it, or choose another -o", e.Output, holder)
}

// ErrSameFile is returned by Lock when the output is the input file itself.
var ErrSameFile = errors.New("the output is the input file")

// Lock prepares the output at path for one writer. It resolves symlinks once (a symlinked output
// is written through to its target, so compaction and --fresh act on the target and the link stays
// a link), creates the output's directory if needed, refuses an output that is the same file as
// input (after symlinks and hard links; input "" or "-" is not checked) with an error wrapping
// ErrSameFile, and takes the exclusive lock without waiting: if another process holds it, the error
// is a *LockedError naming the holder. now is the start time written into the lock file.
func Lock(path, input string, now time.Time) (*OutputLock, error) {
	target, err := resolve(path)
	if err != nil {
		return nil, fmt.Errorf("results: output %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return nil, fmt.Errorf("results: output directory: %w", err)
	}
	if input != "" && input != "-" {
		if same, err := sameFile(input, target); err != nil {
			return nil, fmt.Errorf("results: %w", err)
		} else if same {
			shown := path
			if target != path {
				shown = path + " (-> " + target + ")"
			}
			return nil, fmt.Errorf("-o %s: %w %s: results would be appended to the prompts; choose another output", shown, ErrSameFile, input)
		}
	}
	return acquire(target, holderPrefix()+", started "+now.UTC().Format(time.RFC3339))
}

// Path is the output file as resolved (the target of a symlinked output): open, scan, move aside
// and compact this path.
func (l *OutputLock) Path() string { return l.path }

// Compact compacts the locked output (see Compact); the lock is what makes replacing the file safe.
func (l *OutputLock) Compact(format Format, keep func(id string) bool) (removed int, err error) {
	if l == nil || l.file == nil {
		return 0, errors.New("results: compact: the output lock is not held")
	}
	return compact(l.path, format, keep, compactHooks{})
}

// Unlock removes the lock file and releases the lock. It is safe to call more than once and on nil.
func (l *OutputLock) Unlock() error {
	if l == nil || l.file == nil {
		return nil
	}
	// Removing while still locked: a process that opened the old file before the removal finds,
	// once it gets the lock, that the path no longer names it, and starts over (see acquire).
	rerr := os.Remove(l.lockPath)
	cerr := l.file.Close()
	l.file = nil
	if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return fmt.Errorf("results: unlock: %w", rerr)
	}
	if cerr != nil {
		return fmt.Errorf("results: unlock: %w", cerr)
	}
	return nil
}

// acquire takes the lock of the output target (already resolved), writing holder into the lock file.
func acquire(target, holder string) (*OutputLock, error) {
	lockPath := target + ".lock"
	for range 100 {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("results: lock %s: %w", target, err)
		}
		locked, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("results: lock %s: %w", lockPath, err)
		}
		if !locked {
			held := readHolder(f)
			f.Close()
			return nil, &LockedError{Output: target, Holder: held}
		}
		// The previous holder may have removed the file between our open and our lock: then the
		// lock is on an orphan and the path may already be someone else's. Try again.
		if fi, err := f.Stat(); err == nil {
			if pi, err := os.Stat(lockPath); err == nil && os.SameFile(fi, pi) {
				if err := writeHolder(f, holder); err != nil {
					f.Close()
					return nil, fmt.Errorf("results: lock %s: %w", lockPath, err)
				}
				return &OutputLock{path: target, lockPath: lockPath, file: f}, nil
			}
		}
		f.Close()
	}
	return nil, fmt.Errorf("results: lock %s: the lock file keeps being replaced", lockPath)
}

func writeHolder(f *os.File, holder string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(holder+"\n"), 0)
	return err
}

// readHolder returns the holder line of a lock file, cut short and stripped of control characters
// (the file is another process's and might hold anything).
func readHolder(f *os.File) string {
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, 256))
	s := strings.TrimSpace(string(b))
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// heldByUs reports whether the lock file at lockPath names this process (pid and host: an output
// on a network file system may be locked from another machine) as its holder.
func heldByUs(lockPath string) bool {
	b, err := os.ReadFile(lockPath)
	if err != nil {
		return false
	}
	return strings.HasPrefix(string(b), holderPrefix()+",")
}

// holderPrefix names this process in a lock file: "pid 123 on host name".
func holderPrefix() string {
	host, _ := os.Hostname()
	return "pid " + strconv.Itoa(os.Getpid()) + " on host " + host
}

// Resolve returns the file a possibly symlinked output path leads to, as Lock resolves it (also a
// dangling link's target, and the directory's own links). Files kept next to an output (the batch
// journal, the lock) live next to this path, so every command that names the output finds them.
func Resolve(path string) (string, error) { return resolve(path) }

// resolve follows path's symlinks (also a dangling one, whose target is still to be created) and
// returns the file they lead to, with the directory's own symlinks resolved too.
func resolve(path string) (string, error) {
	for range 40 { // the kernel's own limit on a chain of links
		fi, err := os.Lstat(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			dir := filepath.Dir(path)
			if real, err := filepath.EvalSymlinks(dir); err == nil {
				dir = real
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
			return filepath.Join(dir, filepath.Base(path)), nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", errors.New("too many levels of symbolic links")
}

// sameFile reports whether a and b exist and are the same file (after symlinks, hard links too).
func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}
