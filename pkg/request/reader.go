package request

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// DefaultMaxLineBytes is the longest input line a Reader accepts unless told otherwise. DESIGN §2 requires
// at least 32 MiB; the cap keeps one runaway line from exhausting memory.
const DefaultMaxLineBytes = 256 << 20

// keepBufBytes is the largest line buffer a Reader keeps between lines; a bigger one (left by a huge
// line) is dropped so memory returns to normal after it.
const keepBufBytes = 4 << 20

var utf8BOM = []byte("\xEF\xBB\xBF")

// LineError is a problem with one input line. Reading continues with the next line after it.
type LineError struct {
	File  string // input name, as given to NewReader
	Line  int    // 1-based line number
	Field string // the offending field, e.g. "messages[2].role" or "body.max_tokens"; "" for the whole line
	Msg   string // what is wrong and, in parentheses, how to fix it
	Err   error  // the underlying decode error, if any
}

// Error returns "file:line: field: message (how to fix)", leaving out the field when there is none.
func (e *LineError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// Unwrap returns the underlying decode error, if any.
func (e *LineError) Unwrap() error { return e.Err }

// Reader streams Requests out of a JSONL input, one line at a time, with memory bounded by the longest
// line. It is not safe for concurrent use.
type Reader struct {
	// MaxLineBytes caps the length of one line (without its newline); longer lines are skipped with a
	// *LineError. Set it before the first call to Next; NewReader sets DefaultMaxLineBytes.
	MaxLineBytes int

	name string
	br   *bufio.Reader
	buf  []byte // accumulates a line longer than br's buffer
	line int    // number of the line read last
	off  int64  // bytes consumed: the offset of the next line
	err  error  // sticky: io.EOF or a read error
}

// NewReader returns a Reader over r; name (a path, or "stdin") prefixes every error.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{MaxLineBytes: DefaultMaxLineBytes, name: name, br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next request. Blank lines are skipped. A problem with one line comes back as a
// *LineError, and the following call continues with the next line. At the end of the input Next
// returns io.EOF; a read error is returned wrapped, and again on every later call.
func (r *Reader) Next() (*Request, error) {
	for {
		if r.err != nil {
			return nil, r.err
		}
		start := r.off
		b, tooLong, err := r.readLine()
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("read %s: line %d: %w", r.name, r.line+1, err)
			}
			r.err = err
			return nil, err
		}
		r.line++
		if tooLong > 0 {
			return nil, &LineError{File: r.name, Line: r.line,
				Msg: fmt.Sprintf("line is %s, longer than the %s limit (shorten the prompt or raise the limit)",
					formatBytes(tooLong), formatBytes(r.MaxLineBytes))}
		}
		if r.line == 1 {
			b = bytes.TrimPrefix(b, utf8BOM)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		// b keeps its surrounding whitespace and any \r of CRLF: the JSON decoder skips them, and byte
		// offsets in syntax errors then count from the start of the line.
		ferr := invalidUTF8(b)
		var req *Request
		if ferr == nil {
			req, ferr = parseLine(b, r.line)
		}
		if ferr != nil {
			return nil, &LineError{File: r.name, Line: r.line, Field: ferr.field, Msg: ferr.msg, Err: ferr.err}
		}
		req.Offset = start
		return req, nil
	}
}

// Rereader reads requests of one input again from their Line and Offset (as Reader set them),
// exactly as Reader read them the first time, so a caller need not keep them in memory. It reuses
// one buffer for every read and is safe for concurrent use (reads are serialised).
type Rereader struct {
	mu   sync.Mutex
	ra   io.ReaderAt
	name string
	r    *Reader
}

// NewRereader returns a Rereader over the input ra; name prefixes errors, as for NewReader.
func NewRereader(ra io.ReaderAt, name string) *Rereader {
	// A small buffer: typical lines fit, longer ones are read on into r.buf as by Next.
	return &Rereader{ra: ra, name: name,
		r: &Reader{MaxLineBytes: DefaultMaxLineBytes, name: name, br: bufio.NewReaderSize(nil, 4<<10)}}
}

// Read returns the request of line number line, which starts at byte offset off. A blank line
// there, or none, is an error: the input changed.
func (x *Rereader) Read(off int64, line int) (*Request, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.r
	r.br.Reset(io.NewSectionReader(x.ra, off, math.MaxInt64-off))
	r.line, r.off, r.err = line-1, off, nil
	req, err := r.Next()
	switch {
	case err == io.EOF:
		return nil, fmt.Errorf("%s:%d: no request at byte %d (the input changed during the run?)", x.name, line, off)
	case err != nil:
		return nil, err
	case req.Line != line:
		return nil, fmt.Errorf("%s:%d: a blank line at byte %d (the input changed during the run?)", x.name, line, off)
	}
	return req, nil
}

// readLine returns the next line without its '\n'. The slice is valid until the next call. When the
// line exceeds MaxLineBytes it is consumed without being kept and tooLong reports its length.
// err is io.EOF only when no bytes at all remain.
func (r *Reader) readLine() (line []byte, tooLong int, err error) {
	if cap(r.buf) > keepBufBytes {
		r.buf = nil
	}
	r.buf = r.buf[:0]
	total := 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		total += len(chunk)
		if err == nil && len(r.buf) == 0 && total-1 <= r.MaxLineBytes {
			r.off += int64(total)
			return chunk[:len(chunk)-1], 0, nil // the common case: the whole line sits in br's buffer
		}
		if total-countNewline(chunk) <= r.MaxLineBytes {
			r.buf = append(r.buf, chunk...)
		} else if r.buf != nil {
			r.buf = r.buf[:0] // too long: stop keeping it, but read on to the end of the line
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == nil, errors.Is(err, io.EOF) && total > 0:
			r.off += int64(total)
			n := total - countNewline(chunk)
			if n > r.MaxLineBytes {
				return nil, n, nil
			}
			return bytes.TrimSuffix(r.buf, []byte("\n")), 0, nil
		default:
			return nil, 0, err
		}
	}
}

// countNewline is 1 when chunk ends in the line's '\n', else 0.
func countNewline(chunk []byte) int {
	if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
		return 1
	}
	return 0
}

// formatBytes renders n as B, KiB or MiB for error messages.
func formatBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
