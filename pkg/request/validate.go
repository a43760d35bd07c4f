package request

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"slices"
)

// MaxReportedErrors caps the errors Validate lists; the rest are counted in one final error.
const MaxReportedErrors = 100

// Validator checks a whole input before anything is sent. The zero value is ready to use.
type Validator struct {
	// Check, when set, is called for every request that parses, in input order, for checks that need
	// more than the line itself (a pinned model against the config). A non-nil error is reported as
	// is when it is a *LineError, else as a *LineError for the request's line with its text.
	Check func(*Request) error
	// MemoryIDs is how many id hashes are kept in memory before a sorted run of them is written to
	// a temporary file; 0 means DefaultMemoryIDs.
	MemoryIDs int
	// TempDir is where that file goes; "" means os.TempDir().
	TempDir string
}

// Validate is Validator{}.Validate without cancellation.
func Validate(r io.Reader, name string) (n int, errs []error) {
	return Validator{}.Validate(context.Background(), r, name)
}

// Validate reads the whole input and reports every problem before anything is sent: each line's
// *LineError, each Check error and each duplicate id (as a *LineError naming the line it
// duplicates), in line order. n counts the requests that parsed, duplicates included. At most
// MaxReportedErrors errors are listed, followed by one saying how many more there were. A read
// error, or ctx ending, stops the pass and is the last error.
//
// Memory stays bounded whatever the size of the input: ids are remembered as 64-bit hashes, at most
// MemoryIDs of them in memory, the rest spilled to disk in sorted runs that are merged at the end to
// find duplicates. Only when there are duplicates is the input read a second time, to name their
// lines; that needs r to be an io.Seeker (a file), else one error counts them. Two different ids
// whose hashes collide (odds about 1 in 40 million for a million ids, 1 in 400,000 for ten million) would be
// reported as a duplicate; the message quotes the id, so such a report is plain to see.
func (v Validator) Validate(ctx context.Context, r io.Reader, name string) (n int, errs []error) {
	seed := maphash.MakeSeed()
	ids := &idHashes{limit: cmp.Or(v.MemoryIDs, DefaultMemoryIDs), dir: v.TempDir}
	defer ids.close()
	extra := 0
	report := func(err error) {
		if len(errs) < MaxReportedErrors {
			errs = append(errs, err)
		} else {
			extra++
		}
	}
	var readErr error
	rd := NewReader(r, name)
	for {
		if rd.line%4096 == 0 && ctx.Err() != nil {
			readErr = ctx.Err()
			break
		}
		req, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *LineError
		if errors.As(err, &le) {
			report(err)
			continue
		}
		if err != nil {
			readErr = err
			break
		}
		n++
		if v.Check != nil {
			if err := v.Check(req); err != nil {
				if !errors.As(err, &le) {
					err = &LineError{File: name, Line: req.Line, Msg: err.Error(), Err: err}
				}
				report(err)
			}
		}
		if err := ids.add(maphash.String(seed, req.ID)); err != nil {
			readErr = err
			break
		}
	}
	if readErr == nil {
		var unnamed int
		unnamed, readErr = reportDuplicates(ctx, r, name, seed, ids, report)
		extra += unnamed
	}
	slices.SortStableFunc(errs, func(a, b error) int { return cmp.Compare(lineOf(a), lineOf(b)) })
	if readErr != nil {
		errs = append(errs, readErr)
	}
	if extra > 0 {
		errs = append(errs, fmt.Errorf("%s: and %d more errors", name, extra))
	}
	return n, errs
}

// reportDuplicates finds the duplicated ids and, when there are any, reads r again from the start to
// name the lines that repeat an earlier id, until MaxReportedErrors are named; it returns how many
// repeats it left unnamed. It keeps within the memory budget of ids: at most half as many duplicated hashes, each with
// the line it first appears on, so past that many distinct duplicated ids the ones named may not be
// the first in the file.
func reportDuplicates(ctx context.Context, r io.Reader, name string, seed maphash.Seed, ids *idHashes, report func(error)) (unnamed int, err error) {
	dups, repeats, err := ids.duplicates(max(ids.limit/2, MaxReportedErrors))
	ids.close() // give the memory back before the second read
	if err != nil || repeats == 0 {
		return 0, err
	}
	s, ok := r.(io.Seeker)
	if !ok {
		return 0, fmt.Errorf("%s: %d lines repeat an earlier id (every id must be unique)", name, repeats)
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("%s: rereading to name duplicate ids: %w", name, err)
	}
	firstLine := make([]int, len(dups)) // of dups[i]; 0 until seen
	named := 0
	rd := NewReader(r, name)
	for named < MaxReportedErrors {
		if rd.line%4096 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		req, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				continue // reported by the first pass
			}
			return 0, err
		}
		i, dup := slices.BinarySearch(dups, maphash.String(seed, req.ID))
		switch {
		case !dup:
		case firstLine[i] == 0:
			firstLine[i] = req.Line
		default:
			named++
			field := "id"
			if req.Shape == ShapeBatch {
				field = "custom_id"
			}
			report(&LineError{File: name, Line: req.Line, Field: field,
				Msg: fmt.Sprintf("%q duplicates line %d (every id must be unique)", req.ID, firstLine[i])})
		}
	}
	return repeats - named, nil
}

// lineOf is the line a validation error names, for ordering; errors without one sort last.
func lineOf(err error) int {
	var le *LineError
	if errors.As(err, &le) {
		return le.Line
	}
	return math.MaxInt
}
