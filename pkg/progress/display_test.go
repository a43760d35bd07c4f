package progress_test

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/internal/testkit"
	"github.com/llmbatch/llmbatch/pkg/progress"
)

func TestDisplayDisabledWritesNothing(t *testing.T) {
	var buf testkit.SyncBuffer
	d := progress.New(&buf, 10, progress.Options{Enabled: false})
	d.Skip(2)
	for range 8 {
		d.Add(progress.Outcome{OK: true, InputTokens: 10})
	}
	d.Finish()
	if buf.String() != "" {
		t.Errorf("disabled display wrote %q", buf.String())
	}
	// Logs still go through.
	if _, err := d.Write([]byte("level=INFO msg=hello\n")); err != nil || buf.String() != "level=INFO msg=hello\n" {
		t.Errorf("Write on a disabled display: %q, %v", buf.String(), err)
	}
}

func TestDisplayShowsProgressAndFinishErases(t *testing.T) {
	c := newClock()
	var buf testkit.SyncBuffer
	d := progress.New(&buf, 10, progress.Options{Enabled: true, Now: c.now, Width: 120})
	d.Skip(2) // resumed
	for i := range 8 {
		c.advance(500 * time.Millisecond)
		d.Add(progress.Outcome{OK: i != 3, InputTokens: 100, OutputTokens: 50, CostUSD: 0.01})
	}
	// The last prompt always redraws (the library renders on reaching the total despite the throttle).
	if out := buf.String(); !strings.Contains(out, "ETA 0s, 1 failed, $0.08, 2.0 req/s, 300 tok/s") || !strings.Contains(out, "(10/10)") {
		t.Errorf("bar lacks rates, cost, failures or count:\n%q", out)
	}
	if _, err := d.Write([]byte("a log line\n")); err != nil {
		t.Fatal(err)
	}
	d.Finish()
	d.Add(progress.Outcome{OK: true}) // after Finish: nothing drawn
	out := buf.String()
	if !strings.Contains(out, "\ra log line\n\rETA 0s, 1 failed") {
		t.Errorf("log line not written on a cleared line with the bar redrawn below it:\n%q", out)
	}
	// The summary follows on the erased line: the screen ends with the log line and an empty line.
	if screen := testkit.Screen(out); len(screen) != 2 || screen[0] != "a log line" || screen[1] != "" {
		t.Errorf("after Finish the screen is %q, want the log line and an empty line", screen)
	}
}

// The bar is on screen before any prompt finishes, and a resumed run's bar starts at the prompts
// already done.
func TestDisplayAppearsAtOnceAtTheDoneCount(t *testing.T) {
	var buf testkit.SyncBuffer
	progress.New(&buf, 3000, progress.Options{Enabled: true, Done: 969})
	screen := testkit.Screen(buf.String())
	if len(screen) != 1 || !strings.Contains(screen[0], "(969/3000)") || !strings.Contains(screen[0], "32%") {
		t.Errorf("a resumed display shows %q, want the bar at 969/3000 at once", screen)
	}
	buf = testkit.SyncBuffer{}
	progress.New(&buf, 10, progress.Options{Enabled: true})
	if screen := testkit.Screen(buf.String()); len(screen) != 1 || !strings.Contains(screen[0], "(0/10)") {
		t.Errorf("a new display shows %q, want the bar at 0/10 at once", screen)
	}
}

func TestDisplayConcurrentAdds(t *testing.T) {
	var buf testkit.SyncBuffer
	d := progress.New(&buf, 4000, progress.Options{Enabled: true})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				d.Add(progress.Outcome{OK: true, InputTokens: 1})
			}
		})
	}
	wg.Wait()
	d.Finish()
	if out := buf.String(); !strings.Contains(out, "(4000/4000)") {
		t.Errorf("the bar did not reach 4000/4000 after concurrent adds:\n%q", out[max(0, len(out)-200):])
	}
}

// SetStatus redraws the bar at once with the reason first; the next completed prompt removes it;
// a disabled display writes nothing.
func TestDisplayStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // the library throttles redraws on time.Now: virtual here
		var out testkit.SyncBuffer
		d := progress.New(&out, 10, progress.Options{Enabled: true, Now: time.Now, Width: 160})
		time.Sleep(time.Second)
		d.SetStatus("breaker open on p/m until 12:00:30")
		frames := strings.Split(out.String(), "\r")
		last := frames[len(frames)-1]
		if !strings.HasPrefix(strings.TrimSpace(last), "breaker open on p/m until 12:00:30; ETA") {
			t.Fatalf("the bar's latest frame does not lead with the status: %q", last)
		}
		time.Sleep(time.Second)
		d.Add(progress.Outcome{OK: true})
		d.Add(progress.Outcome{OK: true})
		time.Sleep(time.Second)
		d.Add(progress.Outcome{OK: true})
		frames = strings.Split(out.String(), "\r")
		if last := frames[len(frames)-1]; strings.Contains(last, "breaker") || strings.Contains(last, "(0/10)") {
			t.Errorf("after prompts completed the bar still shows the status, or lacks the count: %q", last)
		}

		var off testkit.SyncBuffer
		q := progress.New(&off, 10, progress.Options{Now: time.Now})
		q.SetStatus("anything")
		if off.String() != "" {
			t.Errorf("a disabled display wrote %q", off.String())
		}
	})
}
