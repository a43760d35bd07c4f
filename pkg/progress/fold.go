package progress

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// FoldHandler is a slog.Handler that folds repeated identical warnings: the first record of a given
// level and message (at slog.LevelWarn or above) in a window is passed on; the repeats within the
// window are counted, not written, and reported as one record "…and N more: MESSAGE" when the
// message comes back after the window or at Flush. A failing provider then costs the terminal one
// line per window instead of one per prompt. Records below Warn pass through untouched. Handlers
// derived with WithAttrs and WithGroup share the counts. It takes no goroutine or timer: the clock
// is read when records arrive.
type FoldHandler struct {
	inner slog.Handler
	st    *foldState
}

type foldState struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Duration
	seen   map[foldKey]*foldEntry
	order  []foldKey // first-seen order, for Flush
}

type foldKey struct {
	level slog.Level
	msg   string
}

type foldEntry struct {
	since      time.Time
	suppressed int
	handler    slog.Handler // the handler of the first record, so the summary keeps its attributes
}

// DefaultFoldWindow is the window NewFoldHandler uses when given 0.
const DefaultFoldWindow = 30 * time.Second

// NewFoldHandler wraps inner. now is time.Now when nil; window is DefaultFoldWindow when <= 0.
func NewFoldHandler(inner slog.Handler, now func() time.Time, window time.Duration) *FoldHandler {
	if now == nil {
		now = time.Now
	}
	if window <= 0 {
		window = DefaultFoldWindow
	}
	return &FoldHandler{inner: inner, st: &foldState{now: now, window: window, seen: map[foldKey]*foldEntry{}}}
}

// Enabled reports whether inner handles level.
func (h *FoldHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle passes r on, unless it repeats a warning already shown within the window.
func (h *FoldHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.inner.Handle(ctx, r)
	}
	k := foldKey{r.Level, r.Message}
	st := h.st
	st.mu.Lock()
	e := st.seen[k]
	now := st.now()
	if e != nil && now.Sub(e.since) < st.window {
		e.suppressed++
		st.mu.Unlock()
		return nil
	}
	var pending *foldEntry
	if e != nil && e.suppressed > 0 {
		pending = &foldEntry{suppressed: e.suppressed, handler: e.handler}
	}
	if e == nil {
		st.order = append(st.order, k)
	}
	st.seen[k] = &foldEntry{since: now, handler: h.inner}
	st.mu.Unlock()
	if pending != nil {
		if err := pending.handler.Handle(ctx, moreRecord(k, pending.suppressed, r.Time)); err != nil {
			return err
		}
	}
	return h.inner.Handle(ctx, r)
}

// Flush writes the "…and N more" record of every warning repeated since it was last shown. Call it
// at the end of a run, before the summary.
func (h *FoldHandler) Flush(ctx context.Context) error {
	st := h.st
	type out struct {
		k foldKey
		e foldEntry
	}
	var todo []out
	st.mu.Lock()
	for _, k := range st.order {
		if e := st.seen[k]; e.suppressed > 0 {
			todo = append(todo, out{k, *e})
			e.suppressed = 0
		}
	}
	now := st.now()
	st.mu.Unlock()
	for _, o := range todo {
		if err := o.e.handler.Handle(ctx, moreRecord(o.k, o.e.suppressed, now)); err != nil {
			return err
		}
	}
	return nil
}

func moreRecord(k foldKey, n int, at time.Time) slog.Record {
	return slog.NewRecord(at, k.level, fmt.Sprintf("…and %d more: %s", n, k.msg), 0)
}

// WithAttrs returns a FoldHandler around inner.WithAttrs, sharing the counts.
func (h *FoldHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &FoldHandler{inner: h.inner.WithAttrs(attrs), st: h.st}
}

// WithGroup returns a FoldHandler around inner.WithGroup, sharing the counts.
func (h *FoldHandler) WithGroup(name string) slog.Handler {
	return &FoldHandler{inner: h.inner.WithGroup(name), st: h.st}
}
