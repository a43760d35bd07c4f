// Package progress shows a run's progress on stderr and summarises it at the end.
//
// Display is the live progress bar (schollz/progressbar/v3): it writes only to the writer it is given
// (stderr, never stdout, DESIGN §1) and only when enabled, which the caller decides with
// term.IsTerminal on stderr and the --progress mode, because progressbar itself never checks for a
// terminal. Summary collects per-(provider, model) statistics for the final table and for JSON.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"

	"github.com/llmbatch/llmbatch/pkg/money"
)

// Outcome is one finished prompt, as the engine reports it to Display.Add and Summary.Add.
type Outcome struct {
	Provider     string // the lane that produced the final result
	Model        string
	OK           bool
	InputTokens  int
	OutputTokens int
	CostUSD      float64
	Latency      time.Duration // of the final attempt
	Retries      int           // requests sent in this run after the prompt's first
	RateLimited  int           // 429 answers received for this prompt in this run
	// Unfinished marks a prompt the run left without a result (stopped, or left for the budget):
	// only its Retries count, in the totals; it is neither ok nor failed.
	Unfinished bool
}

// Options configure a Display.
type Options struct {
	// Enabled shows the bar. The caller passes term.IsTerminal(int(os.Stderr.Fd())) combined with the
	// --progress mode; when false, New and every method write nothing.
	Enabled bool
	// Now reads the clock for rates and the ETA; time.Now when nil.
	Now func() time.Time
	// Throttle is the minimum time between redraws; below 100 ms (including 0) it is 100 ms, so a
	// fast run does not spend its time redrawing a terminal.
	Throttle time.Duration
	// Done is the number of prompts already done by an earlier run (resume): the bar starts there,
	// and they do not count in the rates.
	Done int
	// Width is the terminal's width in columns (80 when 0): the bar's line is kept narrower, since a
	// line that wraps can no longer be redrawn in place.
	Width int
}

const (
	minThrottle = 100 * time.Millisecond
	barWidth    = 20
)

// Display is the progress bar of a run: prompts done out of total, with requests and tokens per
// second, the cost so far and the ETA in its description. It is safe for concurrent use, though the
// engine is expected to call it from its single writer goroutine, as results are written.
type Display struct {
	mu       sync.Mutex
	w        io.Writer
	bar      *progressbar.ProgressBar // nil when disabled
	now      func() time.Time
	throttle time.Duration
	start    time.Time
	lastDesc time.Time
	finished bool
	descMax  int // the description is cut to this many runes so the line fits the terminal
	drawn    int // the widest line the bar has drawn, in runes: what a clear must blank

	total   int
	skipped int // done by an earlier run (resume)
	done    int // finished in this run
	failed  int
	tokens  int64
	cost    float64
	jobs    map[string]*jobView // live batch jobs by key (see Job)
	status  string              // why nothing completes (see SetStatus); "" while prompts complete
}

// New returns a display of total prompts, opts.Done of them already done, writing to w (stderr).
// When opts.Enabled and total > 0 the bar is drawn at once, before any prompt finishes; otherwise
// nothing is ever drawn.
func New(w io.Writer, total int, opts Options) *Display {
	d := &Display{w: w, now: opts.Now, throttle: max(opts.Throttle, minThrottle), total: total,
		skipped: min(max(opts.Done, 0), max(total, 0))}
	if d.now == nil {
		d.now = time.Now
	}
	width := opts.Width
	if width <= 0 {
		width = 80
	}
	// The library draws "DESC 100% |BAR| (DONE/TOTAL) "; one column stays free for the cursor.
	digits := len(fmt.Sprint(total))
	d.descMax = max(width-1-(len(" 100% |")+barWidth+len("| (/) ")+2*digits), 0)
	d.start = d.now()
	if opts.Enabled && total > 0 {
		d.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetVisibility(true),
			progressbar.OptionThrottle(d.throttle),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(barWidth),
			// The ETA is ours, in the description: the library's would use its own clock.
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSetDescription(d.describe(d.start)),
		)
		// The first render ignores the throttle: the bar shows now, at the done count.
		if d.skipped > 0 {
			_ = d.bar.Set(d.skipped)
		} else {
			_ = d.bar.RenderBlank()
		}
		d.noteDrawn()
	}
	return d
}

// noteDrawn remembers the width of the bar's latest rendering.
func (d *Display) noteDrawn() {
	d.drawn = max(d.drawn, utf8.RuneCountInString(strings.Trim(d.bar.String(), "\r")))
}

// clear blanks the bar's line and returns the cursor to its start. The library's own Clear blanks
// only as wide as an earlier rendering and can leave the tail of a longer one on screen.
func (d *Display) clear() {
	_, _ = io.WriteString(d.w, "\r"+strings.Repeat(" ", d.drawn)+"\r")
}

// Add records one finished prompt and redraws the bar (at most once per throttle interval).
func (d *Display) Add(o Outcome) {
	if o.Unfinished {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status = "" // prompts complete again
	d.done++
	if !o.OK {
		d.failed++
	}
	d.tokens += int64(o.InputTokens + o.OutputTokens)
	d.cost += o.CostUSD
	d.advance(1)
}

// Skip counts n more prompts as already done (results kept from an earlier run being resumed), on
// top of Options.Done. They move the bar but not the rates.
func (d *Display) Skip(n int) {
	if n <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.skipped += n
	d.advance(n)
}

func (d *Display) advance(n int) {
	if d.bar == nil || d.finished {
		return
	}
	if now := d.now(); now.Sub(d.lastDesc) >= d.throttle {
		d.lastDesc = now
		// Describe redraws too, so the bar and its description move together.
		d.bar.Describe(d.describe(now))
	}
	_ = d.bar.Add(n) // errors are write errors on stderr: nothing useful to do with them
	d.noteDrawn()
}

// SetStatus shows why nothing completes ("waiting for the rate limit of openai/gpt-4o-mini until
// 12:03:10", "breaker open on …"), first in the bar's description, and redraws the bar (unless the
// library's throttle, on the real clock, drew it less than Throttle ago: call it again); "" removes it. The next completed prompt (Add) removes it too. A disabled display draws nothing.
func (d *Display) SetStatus(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar == nil || d.finished {
		return
	}
	// Even an unchanged status redraws: the library may have throttled the previous redraw, and
	// a stalled run has no other redraw to show it.
	d.status = s
	now := d.now()
	d.lastDesc = now
	d.bar.Describe(d.describe(now))
	d.noteDrawn()
}

// Write writes p (log lines) to the display's writer without tearing the bar: the bar is cleared,
// p written, and the bar drawn again below it. Use the Display as the log output while it runs.
func (d *Display) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar == nil || d.finished {
		return d.w.Write(p)
	}
	d.clear()
	n, err := d.w.Write(p)
	if err == nil && len(p) > 0 && p[len(p)-1] == '\n' {
		// The bar's last rendering starts with "\r", so it redraws in place until the next update.
		_, _ = io.WriteString(d.w, d.bar.String())
	}
	return n, err
}

// Finish erases the bar, leaving the line to the run's summary, which states the counts, the cost
// and the one wall time of the run. Later calls to Add, Skip and Finish draw nothing; Write still
// writes.
func (d *Display) Finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar == nil || d.finished {
		return
	}
	d.finished = true
	_ = d.bar.Exit()
	d.clear()
}

// describe is the bar's description at now: rates, cost and ETA.
func (d *Display) describe(now time.Time) string {
	elapsed := now.Sub(d.start)
	eta := "--"
	if remaining := d.total - d.skipped - d.done; remaining <= 0 {
		eta = "0s"
	} else if d.done > 0 && elapsed > 0 {
		left := time.Duration(float64(remaining) / float64(d.done) * float64(elapsed))
		eta = left.Round(time.Second).String()
	}
	// Most important first: a narrow terminal cuts the end.
	desc := "ETA " + eta
	if d.status != "" {
		desc = d.status + "; " + desc
	}
	if d.failed > 0 {
		desc += fmt.Sprintf(", %d failed", d.failed)
	}
	if j := d.jobsDesc(now); j != "" {
		desc += ", " + j
	}
	desc += ", " + d.rates(elapsed)
	if r := []rune(desc); d.descMax > 0 && len(r) > d.descMax {
		desc = string(r[:d.descMax-1]) + "…"
	}
	return desc
}

// rates formats the cost so far and requests and tokens per second.
func (d *Display) rates(elapsed time.Duration) string {
	var rps, tps float64
	if s := elapsed.Seconds(); s > 0 {
		rps, tps = float64(d.done)/s, float64(d.tokens)/s
	}
	return fmt.Sprintf("%s, %.1f req/s, %s tok/s", money.Format(d.cost), rps, humanize(tps))
}

// humanize writes n with a k/M suffix.
func humanize(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}
