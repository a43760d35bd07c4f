package request

import (
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"slices"
)

// MaxReportedErrors caps the errors Validate lists; the rest are counted in one final error.
const MaxReportedErrors = 100

// Validate reads the whole input and reports every problem before anything is sent: each line's
// *LineError and each duplicate id (as a *LineError naming the line it duplicates), in line order. n
// counts the requests that parsed, duplicates included. At most MaxReportedErrors errors are listed,
// followed by one saying how many more there were. A read error ends the pass and is the last error.
//
// Memory stays bounded by 8 bytes per request: ids are remembered as 64-bit hashes in a slice, which
// is sorted at the end to find duplicates (a map would take five times as much). Only when there are
// duplicates is the input read a second time, to name their lines; that needs r to be an io.Seeker
// (a file), else one error counts them. Two different ids whose hashes collide (odds about 1 in 10^7
// for a million ids) would be reported as duplicates.
func Validate(r io.Reader, name string) (n int, errs []error) {
	seed := maphash.MakeSeed()
	var hashes []uint64
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
		hashes = append(hashes, maphash.String(seed, req.ID))
	}
	if dups := duplicated(hashes); len(dups) > 0 {
		hashes = nil // let the collector have it back before the second pass
		if err := reportDuplicates(r, name, seed, dups, report); err != nil {
			report(err)
		}
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

// duplicated returns the hashes that occur more than once; it sorts hs.
func duplicated(hs []uint64) map[uint64]int {
	slices.Sort(hs)
	var dups map[uint64]int
	for i := 1; i < len(hs); i++ {
		if hs[i] == hs[i-1] {
			if dups == nil {
				dups = map[uint64]int{}
			}
			dups[hs[i]] = 0
		}
	}
	return dups
}

// reportDuplicates reads r again from the start to name the lines of the duplicated ids.
func reportDuplicates(r io.Reader, name string, seed maphash.Seed, dups map[uint64]int, report func(error)) error {
	s, ok := r.(io.Seeker)
	if !ok {
		return fmt.Errorf("%s: %d ids appear more than once (every id must be unique)", name, len(dups))
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: rereading to name duplicate ids: %w", name, err)
	}
	rd := NewReader(r, name)
	for {
		req, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				continue // reported by the first pass
			}
			return err
		}
		h := maphash.String(seed, req.ID)
		first, dup := dups[h]
		switch {
		case !dup:
		case first == 0:
			dups[h] = req.Line
		default:
			field := "id"
			if req.Shape == ShapeBatch {
				field = "custom_id"
			}
			report(&LineError{File: name, Line: req.Line, Field: field,
				Msg: fmt.Sprintf("%q duplicates line %d (every id must be unique)", req.ID, first)})
		}
	}
}

// lineOf is the line a validation error names, for ordering; errors without one sort last.
func lineOf(err error) int {
	var le *LineError
	if errors.As(err, &le) {
		return le.Line
	}
	return math.MaxInt
}
