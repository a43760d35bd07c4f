package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
)

// Checkpoint is what an existing output says about a run: per custom_id, the status and
// request_hash of its LAST line, and counts for the resume report. It does not store the ids
// themselves (see Done for the precision this buys). A nil *Checkpoint is an empty one.
type Checkpoint struct {
	Path   string // the scanned file
	Format Format // the format it was scanned as

	Lines      int // complete result lines (blank lines and a torn tail not counted)
	OKLines    int // lines with status ok
	ErrorLines int // lines with status error
	Superseded int // lines followed later in the file by another line for the same custom_id
	IDs        int // distinct custom_ids
	DoneIDs    int // distinct custom_ids whose last line is ok (whatever its request_hash)
	// CostUSD sums cost_usd over every line, superseded ones included: what earlier runs spent
	// (the openai format records no cost: 0).
	CostUSD float64

	// TornLine is the 1-based line number of a torn last line that Scan removed, 0 if none;
	// TornBytes is how many bytes were truncated from the end of the file.
	TornLine  int
	TornBytes int64

	idx      *idIndex[ckEntry]
	hashSeed maphash.Seed
}

// ckEntry is what a Checkpoint keeps per custom_id: 16 bytes with the index's fingerprint.
type ckEntry struct {
	hash uint64 // 64-bit hash of the last line's request_hash
	ok   bool   // the last line's status is ok
}

// Done reports whether the last line for id is ok and carries request hash hash, i.e. whether a
// resumed run may skip the prompt. A prompt whose last line is an error, or whose content changed
// since (a different hash), is not done. The request_hash is compared through a 64-bit hash: a
// changed prompt is mistaken for done with probability 2^-64 per prompt. Done on a nil Checkpoint
// returns false.
func (c *Checkpoint) Done(id, hash string) bool {
	if c == nil || c.idx == nil {
		return false
	}
	e, ok := c.idx.get(id)
	return ok && e.ok && e.hash == maphash.String(c.hashSeed, hash)
}

func newCheckpoint(path string, format Format) *Checkpoint {
	return &Checkpoint{Path: path, Format: format, idx: newIDIndex[ckEntry](), hashSeed: maphash.MakeSeed()}
}

// Scan reads the output at path, written in format, and returns its Checkpoint. A missing file
// yields an empty Checkpoint and no error. The file is streamed: memory is one line (lines may be
// of any size) plus about 50 bytes per distinct custom_id, whatever the ids' length. The file must
// not be written while Scan runs; "-" (stdout) cannot be scanned and is the caller's to handle.
//
// A torn last line, left by a crash, is removed: a last line without a trailing newline, or a
// last line that is not valid JSON, is truncated away (to the end of the last complete line, then
// fsync'd) and reported in TornLine and TornBytes; appending afterwards yields valid JSONL. A line
// counts only once its newline is written, so even a complete JSON object missing its newline is
// removed (its prompt is simply sent again). Any other bad line (invalid JSON before the last
// line, a line without custom_id, a well-formed line in the other format, even at the end) is an
// error naming file:line, and the file is left untouched.
func Scan(path string, format Format) (*Checkpoint, error) {
	c := newCheckpoint(path, format)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	tail, err := walk(f, path, format, func(l *line) error {
		c.Lines++
		c.CostUSD += l.cost
		if l.ok {
			c.OKLines++
		} else {
			c.ErrorLines++
		}
		c.idx.put(l.id, ckEntry{hash: maphash.String(c.hashSeed, l.hash), ok: l.ok})
		return nil
	})
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("results: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	c.IDs = c.idx.len()
	c.Superseded = c.Lines - c.IDs
	c.idx.each(func(e ckEntry) {
		if e.ok {
			c.DoneIDs++
		}
	})
	if tail.line > 0 {
		if err := truncate(path, tail.start); err != nil {
			return nil, err
		}
		c.TornLine, c.TornBytes = tail.line, tail.size
	}
	return c, nil
}

// truncate cuts the file at path to size bytes and fsyncs it.
func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("results: repair torn last line: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("results: repair torn last line: %w", err)
	}
	return nil
}

// line is one complete, valid result line as walk hands it out. raw (the bytes including the
// line ending) is valid only during the callback.
type line struct {
	no   int
	raw  []byte
	id   string
	ok   bool
	hash string
	cost float64 // cost_usd; 0 when absent
}

// tornTail locates a torn last line: line number (0 = none), its start offset and size.
type tornTail struct {
	line        int
	start, size int64
}

// walk streams the result lines of f (named name) and calls fn for each complete, valid one in
// order. A torn last line is not passed to fn but returned; other bad lines are errors.
func walk(f io.Reader, name string, format Format, fn func(*line) error) (tornTail, error) {
	lr := lineReader{r: bufio.NewReaderSize(f, 256<<10)}
	var (
		fields  scanFields
		l       line
		pending *tornTail // a line with invalid JSON: torn if nothing but blank lines follow
		perr    error
	)
	for no := 1; ; no++ {
		start := lr.off
		raw, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return tornTail{}, fmt.Errorf("results: read %s: %w", name, err)
		}
		complete := raw[len(raw)-1] == '\n'
		body := bytes.TrimRight(raw, "\r\n")
		if no == 1 {
			body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if !complete && pending == nil {
				pending = &tornTail{line: no, start: start} // whitespace without a newline
			}
			continue
		}
		if pending != nil {
			return tornTail{}, perr
		}
		if !complete {
			// No newline: the line was never finished. A valid JSON object in the wrong shape is
			// still reported rather than silently cut.
			if err := parseLine(format, body, &fields); err != nil && !isSyntax(err) {
				return tornTail{}, fmt.Errorf("results: %s:%d: %w", name, no, err)
			}
			pending = &tornTail{line: no, start: start}
			continue
		}
		if err := parseLine(format, body, &fields); err != nil {
			perr = fmt.Errorf("results: %s:%d: %w", name, no, err)
			if !isSyntax(err) {
				return tornTail{}, perr
			}
			pending = &tornTail{line: no, start: start}
			continue
		}
		l = line{no: no, raw: raw, id: fields.CustomID, ok: fields.isOK(format), hash: fields.RequestHash, cost: fields.CostUSD}
		if err := fn(&l); err != nil {
			return tornTail{}, err
		}
	}
	if pending == nil {
		return tornTail{}, nil
	}
	pending.size = lr.off - pending.start
	return *pending, nil
}

func isSyntax(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se)
}

// scanFields is the part of a line Scan and Compact look at, in either format.
type scanFields struct {
	CustomID    string
	Status      string  // default format
	RequestHash string  // both formats
	Response    bool    // openai format: "response" is an object
	StatusCode  int     // openai format: response.status_code
	Error       bool    // both formats: "error" is an object
	CostUSD     float64 // default format: cost_usd
}

func (s *scanFields) isOK(format Format) bool {
	if format == FormatOpenAI {
		return s.Response && s.StatusCode == 200 && !s.Error
	}
	return s.Status == StatusOK
}

// parseLine decodes body into s and checks that it is a result line in format. Invalid JSON yields
// a *json.SyntaxError (wrapped); other errors describe what is wrong with a well-formed line.
func parseLine(format Format, body []byte, s *scanFields) error {
	if err := decodeFields(body, s); err != nil {
		if isSyntax(err) {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		return fmt.Errorf("not a result line: %w", err)
	}
	if s.CustomID == "" {
		return errors.New("result line without custom_id")
	}
	looksOpenAI := s.Status == "" && (s.Response || s.Error)
	switch format {
	case FormatOpenAI:
		if s.Status != "" {
			return fmt.Errorf("line in default format (has \"status\") but the output format is %s", format)
		}
		if !looksOpenAI {
			return errors.New("openai result line without response or error")
		}
	default:
		if looksOpenAI {
			return fmt.Errorf("line in openai format but the output format is %s", format)
		}
		if s.Status != StatusOK && s.Status != StatusError {
			return fmt.Errorf("invalid status %q (want %q or %q)", s.Status, StatusOK, StatusError)
		}
	}
	return nil
}

// lineReader reads lines of any length from a bufio.Reader, reusing one buffer for lines longer
// than the reader's buffer, and counts the bytes consumed.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
	off int64
}

// next returns the next line including its '\n' (absent only on the last line of the input), or
// io.EOF when the input is exhausted. The slice is valid until the next call.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		s, err := lr.r.ReadSlice('\n')
		lr.off += int64(len(s))
		if err == bufio.ErrBufferFull {
			lr.buf = append(lr.buf, s...)
			continue
		}
		if len(lr.buf) > 0 {
			lr.buf = append(lr.buf, s...)
			s = lr.buf
		}
		switch {
		case err == nil:
			return s, nil
		case err == io.EOF && len(s) > 0:
			return s, nil
		}
		return nil, err
	}
}
