package request

import (
	"fmt"
	"io"
	"os"
)

// Input is a prompt file that can be read more than once: a named file, or standard input spooled to
// a temporary file the first time.
type Input struct {
	path  string // file to open
	name  string // for messages
	spool bool   // path is our temporary copy of stdin, removed by Close
}

// OpenInput checks that path can be read and returns an Input for it. The path "-" means stdin, which
// is copied to a temporary file (in os.TempDir) so that validation and the run can each read it.
// The caller must Close the Input to remove that copy.
func OpenInput(path string, stdin io.Reader) (*Input, error) {
	if path == "-" {
		return spoolStdin(stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("open input %s: is a directory, not a JSONL file", path)
	}
	return &Input{path: path, name: path}, nil
}

func spoolStdin(stdin io.Reader) (*Input, error) {
	f, err := os.CreateTemp("", "llmbatch-stdin-*.jsonl")
	if err != nil {
		return nil, fmt.Errorf("spool stdin: %w", err)
	}
	_, err = io.Copy(f, stdin)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("spool stdin to %s: %w", f.Name(), err)
	}
	return &Input{path: f.Name(), name: "stdin", spool: true}, nil
}

// Name is how errors refer to the input: the path as given, or "stdin".
func (in *Input) Name() string { return in.name }

// Open returns a fresh reader positioned at the start of the input.
func (in *Input) Open() (io.ReadCloser, error) {
	f, err := os.Open(in.path)
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", in.name, err)
	}
	return f, nil
}

// Close removes the spooled copy of stdin, if any. It is safe to call more than once.
func (in *Input) Close() error {
	if !in.spool {
		return nil
	}
	in.spool = false
	if err := os.Remove(in.path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove stdin spool: %w", err)
	}
	return nil
}
