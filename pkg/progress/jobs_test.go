package progress_test

import (
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/testkit"
	"github.com/llmbatch/llmbatch/pkg/progress"
)

// TestDisplayShowsBatchJobs: each batch job's first state and every change of state get a line of
// their own above the bar (state, line counts, age from the job's creation); a poll that changes
// only the counts writes no line; the bar's description carries the live jobs' counts and the
// oldest one's age, and an ended job leaves it.
func TestDisplayShowsBatchJobs(t *testing.T) {
	c := newClock()
	var buf testkit.SyncBuffer
	d := progress.New(&buf, 3, progress.Options{Enabled: true, Now: c.now, Width: 160})
	created := c.now()
	job := progress.Job{Key: "c1", Lane: "sim-openai/gpt-sim", ID: "batch_1", State: "validating", Total: 50000, Created: created}
	c.advance(2 * time.Second)
	d.Job(job)
	c.advance(time.Minute)
	job.State, job.Done, job.Failed = "in_progress", 1200, 12
	d.Job(job)
	c.advance(time.Minute)
	job.Done = 2400 // counts only: no line
	d.Job(job)
	// A second job whose provider gives no creation time: its age counts from when it was first seen.
	d.Job(progress.Job{Key: "c2", Lane: "sim-gemini/gemini-sim", State: "in_progress", Done: 5, Total: 10})
	c.advance(30 * time.Second)
	job.State, job.Done, job.Ended = "completed", 50000, true
	d.Job(job)
	c.advance(time.Minute)
	d.Add(progress.Outcome{OK: true})
	d.Add(progress.Outcome{OK: true})
	d.Add(progress.Outcome{OK: true}) // the last prompt: the library draws despite its throttle

	screen := testkit.Screen(buf.String())
	want := []string{
		"batch job c1 sim-openai/gpt-sim batch_1: validating, 0 of 50,000 lines done, age 2s",
		"batch job c1 sim-openai/gpt-sim batch_1: in_progress, 1,200 of 50,000 lines done, 12 failed, age 1m2s",
		"batch job c2 sim-gemini/gemini-sim: in_progress, 5 of 10 lines done, age 0s",
		"batch job c1 sim-openai/gpt-sim batch_1: completed, 50,000 of 50,000 lines done, 12 failed, age 2m32s",
	}
	if len(screen) != len(want)+1 {
		t.Fatalf("screen:\n%s\nwant %d job lines and the bar", strings.Join(screen, "\n"), len(want))
	}
	for i, w := range want {
		if screen[i] != w {
			t.Errorf("line %d: %q, want %q", i+1, screen[i], w)
		}
	}
	// c1 ended and left the description; c2 is live, seen 1m30s ago.
	if bar := screen[len(want)]; !strings.Contains(bar, "1 batch job 5/10, oldest 1m30s") || !strings.Contains(bar, "(3/3)") {
		t.Errorf("bar %q lacks the live job's counts and age", bar)
	}
}

// TestDisplayJobsDisabled: a disabled display writes nothing for jobs either.
func TestDisplayJobsDisabled(t *testing.T) {
	var buf testkit.SyncBuffer
	d := progress.New(&buf, 3, progress.Options{Enabled: false})
	d.Job(progress.Job{Key: "c1", State: "in_progress", Total: 3})
	d.Finish()
	d.Job(progress.Job{Key: "c1", State: "completed", Ended: true})
	if buf.String() != "" {
		t.Errorf("wrote %q", buf.String())
	}
}
