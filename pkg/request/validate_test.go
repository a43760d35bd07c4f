package request

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestValidateCapsErrorList(t *testing.T) {
	var b strings.Builder
	const bad = MaxReportedErrors + 25
	for i := range bad {
		fmt.Fprintf(&b, `{"id":"ok%d","prompt":"fine"}`+"\n", i)
		fmt.Fprintf(&b, `{"id":"bad%d","prompt":""}`+"\n", i)
	}
	n, errs := Validate(strings.NewReader(b.String()), "big.jsonl")
	if n != bad {
		t.Errorf("n = %d, want %d", n, bad)
	}
	if len(errs) != MaxReportedErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), MaxReportedErrors+1)
	}
	var le *LineError
	if !errors.As(errs[MaxReportedErrors-1], &le) || le.Line != 2*MaxReportedErrors {
		t.Errorf("last listed error = %v, want line %d", errs[MaxReportedErrors-1], 2*MaxReportedErrors)
	}
	if got, want := errs[MaxReportedErrors].Error(), "big.jsonl: and 25 more errors"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}

func TestValidateStopsAtReadError(t *testing.T) {
	boom := errors.New("connection reset")
	in := io.MultiReader(strings.NewReader(`{"id":"a","prompt":"x"}`+"\n"+`{"id":"b","prompt":""}`+"\n"), iotest.ErrReader(boom))
	n, errs := Validate(in, "in")
	if n != 1 || len(errs) != 2 || !errors.Is(errs[1], boom) {
		t.Errorf("Validate = %d, %v; want 1 request, the line-2 error, then the read error", n, errs)
	}
}

func TestValidateCleanInput(t *testing.T) {
	n, errs := Validate(strings.NewReader(`{"prompt":"a"}`+"\n\n"+`{"prompt":"b"}`+"\r\n"), "in")
	if n != 2 || len(errs) != 0 {
		t.Errorf("Validate = %d, %v; want 2 requests and no errors (ids line-1 and line-3)", n, errs)
	}
}
