package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"syscall"
	"time"

	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/redact"
)

// Writer appends result lines to an output. Each Write marshals one Result into one complete line
// (ending in '\n') and hands it to the underlying io.Writer in a single Write call, unbuffered, so a
// crash can tear at most the last line (which Scan repairs) and a completed result is in the kernel
// as soon as Write returns. Writer does not fsync per line; call Sync for durability.
//
// The first error from the underlying writer is sticky: that Write and every later Write or Sync
// return it without touching the output again, so a full disk stops the run while keeping every
// line already written. Writer is safe for concurrent use (calls are serialised), though the design
// has a single goroutine own it.
type Writer struct {
	mu     sync.Mutex
	out    recordingWriter
	enc    *json.Encoder
	format Format
	name   string
	now    func() time.Time
	err    error
}

// Option configures a Writer.
type Option func(*Writer)

// WithClock sets the clock that stamps the "created" field of FormatOpenAI lines (default time.Now).
func WithClock(now func() time.Time) Option { return func(w *Writer) { w.now = now } }

// WithName sets the name used for the output in error messages. By default it is the result of the
// writer's Name method (as *os.File has), else "output".
func WithName(name string) Option { return func(w *Writer) { w.name = name } }

// NewWriter returns a Writer that writes lines in format to w. w is typically the *os.File returned
// by OpenAppend, or os.Stdout for "-o -".
func NewWriter(w io.Writer, format Format, opts ...Option) *Writer {
	wr := &Writer{format: format, now: time.Now, name: "output"}
	if n, ok := w.(interface{ Name() string }); ok {
		wr.name = n.Name()
	}
	wr.out.w = w
	wr.enc = json.NewEncoder(&wr.out)
	wr.enc.SetEscapeHTML(false)
	for _, o := range opts {
		o(wr)
	}
	return wr
}

// Write appends r as one line. It returns an error, without writing anything, when r is invalid
// (nil, empty custom_id, status neither "ok" nor "error") or cannot be marshalled (e.g. invalid
// Metadata JSON); such errors are not sticky. It rounds r.CostUSD in place with money.Round, so the
// line carries no float noise and what the caller records from r afterwards matches the file. A failure of the underlying writer is sticky (see
// Writer) and names the output; at most the bytes of this one line may have reached it.
func (w *Writer) Write(r *Result) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := validate(r); err != nil {
		return fmt.Errorf("results: %s: %w", w.name, err)
	}
	if r.Error != nil { // an error message may quote the URL called, with a key in it
		if msg := redact.String(r.Error.Message); msg != r.Error.Message {
			masked, info := *r, *r.Error
			info.Message, masked.Error = msg, &info
			r = &masked
		}
	}
	r.CostUSD = money.Round(r.CostUSD)
	var v any = r
	if w.format == FormatOpenAI {
		v = toOpenAI(r, w.now())
	}
	w.out.err = nil
	err := w.enc.Encode(v) // marshals fully, then makes exactly one Write call
	if w.out.err != nil {
		w.err = wrapFileErr("write", w.name, w.out.err)
		return w.err
	}
	if err != nil {
		return fmt.Errorf("results: %s: encode %q: %w", w.name, r.CustomID, err)
	}
	return nil
}

// Sync commits the written lines to stable storage when the underlying writer has a Sync method
// (*os.File). Outputs that cannot be synced (pipes, terminals) and writers without Sync return nil.
// A Sync failure is sticky like a write failure: after a failed fsync the written data cannot be
// trusted.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	s, ok := w.out.w.(interface{ Sync() error })
	if !ok {
		return nil
	}
	if err := s.Sync(); err != nil {
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
			return nil // not a file: nothing to sync
		}
		w.err = wrapFileErr("sync", w.name, err)
		return w.err
	}
	return nil
}

// Err returns the sticky error, or nil while the Writer is healthy.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// validate checks what Scan will require of the line.
func validate(r *Result) error {
	switch {
	case r == nil:
		return errors.New("nil result")
	case r.CustomID == "":
		return errors.New("result without custom_id")
	case r.Status != StatusOK && r.Status != StatusError:
		return fmt.Errorf("result %q: invalid status %q (want %q or %q)", r.CustomID, r.Status, StatusOK, StatusError)
	}
	return nil
}

// recordingWriter remembers the error of the last Write, turning a short write into
// io.ErrShortWrite, so Writer can tell write failures from marshalling failures.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	r.err = err
	return n, err
}

// wrapFileErr prefixes err with "results:" and, unless it already names the file (*fs.PathError),
// with the operation and the file name.
func wrapFileErr(op, name string, err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("results: %w", err)
	}
	return fmt.Errorf("results: %s %s: %w", op, name, err)
}
