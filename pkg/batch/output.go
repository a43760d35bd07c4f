package batch

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// ResultSource is checked for every prompt before it is sent: the seam where a run learns that a
// prompt needs no request. Today's implementation is the resume scan of the output (a current ok
// line: skip the prompt); a response cache plugs in here next, answering with a result to write.
type ResultSource interface {
	// Known returns skip=true when req needs no request. A non-nil r is then written as req's
	// result (a cached answer); a nil r means the output already holds it (resume).
	Known(req *request.Request) (r *results.Result, skip bool)
}

// ResponseCache is the response cache as a run sees it: a ResultSource whose Known answers prompts
// with cached result lines, and which keeps the answers the run buys (Store is called for every
// prompt's final result, before it is written; it decides what to keep). pkg/cache implements it.
type ResponseCache interface {
	ResultSource
	Store(req *request.Request, r *results.Result)
}

// firstKnown asks each source in turn: the resume scan first, then the response cache.
type firstKnown []ResultSource

func (s firstKnown) Known(req *request.Request) (*results.Result, bool) {
	for _, src := range s {
		if src == nil {
			continue
		}
		if r, skip := src.Known(req); skip {
			return r, true
		}
	}
	return nil, false
}

// laneNames lists lanes as "provider/model".
func laneNames(lanes []*selector.Lane) []string {
	out := make([]string, len(lanes))
	for i, l := range lanes {
		out[i] = l.Provider + "/" + l.Name
	}
	return out
}

// resumed is the ResultSource of a resumed output: prompts with a current ok line are skipped.
type resumed struct{ cp *results.Checkpoint }

func (s resumed) Known(req *request.Request) (*results.Result, bool) {
	return nil, s.cp.Done(req.ID, req.Hash)
}

// output is the run's output file, open for appending.
type output struct {
	path  string // "-" = stdout
	w     io.Writer
	known ResultSource // nil when nothing is known (stdout, --fresh)
	close func() error // syncs and closes
}

// scanOutput reads an existing output to resume from it (repairing a torn last line), before the
// input is checked, so the check can count the prompts already done. It returns nil for stdout,
// with o.Fresh, and when there is nothing to resume.
func scanOutput(o *Options, logger *slog.Logger) (*results.Checkpoint, error) {
	if o.Output == "-" || o.Fresh {
		return nil, nil
	}
	cp, err := results.Scan(o.Output, o.Format)
	if err != nil {
		return nil, usageErr(fmt.Errorf("%w (fix or move the file, or pass --fresh to start over)", err))
	}
	if cp.Lines > 0 {
		logger.Info("resuming from the existing output", "file", o.Output, "ok_lines", cp.OKLines, "error_lines", cp.ErrorLines,
			"torn_line_repaired", cp.TornLine > 0)
	}
	return cp, nil
}

// openOutput prepares the output for appending: resumed from cp (scanOutput's) or, with o.Fresh,
// started over after moving the old file aside.
func openOutput(o *Options, cp *results.Checkpoint, logger *slog.Logger, now func() time.Time) (*output, error) {
	path := o.Output
	if path == "-" {
		return &output{path: path, w: o.Stdout, close: func() error { return nil }}, nil
	}
	out := &output{path: path}
	if o.Fresh {
		moved, err := results.MoveAside(path, now())
		if err != nil {
			return nil, usageErr(err)
		}
		if moved != "" {
			logger.Info("--fresh: moved the previous output aside", "from", path, "to", moved)
		}
	} else if cp != nil {
		out.known = resumed{cp}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, usageErr(fmt.Errorf("output directory: %w", err))
	}
	open := func(path string) (io.WriteCloser, error) { return results.OpenAppend(path) }
	if o.OpenOutput != nil {
		open = o.OpenOutput
	}
	file, err := open(path)
	if err != nil {
		return nil, usageErr(err)
	}
	out.w = file
	out.close = func() error {
		if s, ok := file.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				file.Close()
				return err
			}
		}
		return file.Close()
	}
	return out, nil
}

// compact removes superseded lines (an earlier error, an answer to a since-changed prompt), so
// readers see exactly one line per id. A failure leaves every line in place and is only logged.
func (out *output) compact(format results.Format, logger *slog.Logger) {
	if out.path == "-" {
		return
	}
	if removed, err := results.Compact(out.path, format, func(string) bool { return true }); err != nil {
		logger.Warn("could not compact the output; it still holds every result", "file", out.path, "error", err)
	} else if removed > 0 {
		logger.Info("compacted the output", "file", out.path, "superseded_lines_removed", removed)
	}
}
