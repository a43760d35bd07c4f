package request

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
)

// MaxReportedErrors caps the errors Validate lists; the rest are counted in one final error.
const MaxReportedErrors = 100

// Validate reads the whole input once and reports every problem before anything is sent: each line's
// *LineError and each duplicate id (as a *LineError naming the line it duplicates). n counts the
// requests that parsed, duplicates included. At most MaxReportedErrors errors are listed, followed by
// one saying how many more there were. A read error ends the pass and is the last error.
// Memory stays bounded: ids are remembered as 64-bit hashes, not strings, so two different ids whose
// hashes collide (odds about 1 in 10^7 for a million ids) would be reported as duplicates.
func Validate(r io.Reader, name string) (n int, errs []error) {
	seed := maphash.MakeSeed()
	firstLine := make(map[uint64]int)
	extra := 0
	report := func(err error) {
		if len(errs) < MaxReportedErrors {
			errs = append(errs, err)
		} else {
			extra++
		}
	}
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
			report(err)
			break
		}
		n++
		h := maphash.String(seed, req.ID)
		if first, dup := firstLine[h]; dup {
			field := "id"
			if req.Shape == ShapeBatch {
				field = "custom_id"
			}
			report(&LineError{File: name, Line: req.Line, Field: field,
				Msg: fmt.Sprintf("%q duplicates line %d (every id must be unique)", req.ID, first)})
			continue
		}
		firstLine[h] = req.Line
	}
	if extra > 0 {
		errs = append(errs, fmt.Errorf("%s: and %d more errors", name, extra))
	}
	return n, errs
}
