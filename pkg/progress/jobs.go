package progress

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Job is a provider batch job as the batch route last polled it.
type Job struct {
	Key   string // unique in the run (the journal's chunk id)
	Lane  string // provider/model
	ID    string // the provider's batch id
	State string // the provider's status, e.g. in_progress
	Ended bool   // the state is final: the job changes no more
	// Total, Done and Failed count the job's lines: all, finished (answered or errored), errored.
	Total, Done, Failed int
	// Created is when the job was created (its age counts from it); zero = when first seen.
	Created time.Time
}

// jobView is what the display keeps of a job.
type jobView struct {
	Job
	since time.Time // Created, else when the job was first seen
}

// Job records a batch job's latest state. A new job and every change of its state write a line
// above the bar ("batch job c1 sim-openai/gpt-sim batch_1: in_progress, 1,200 of 50,000 lines done,
// 12 failed, age 4m0s"); the bar's description carries the live jobs' counts and the oldest one's
// age, so a run waiting on batch jobs shows them moving between results. An ended job's line is its
// last. A disabled display writes nothing.
func (d *Display) Job(j Job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar == nil || d.finished {
		return
	}
	now := d.now()
	if d.jobs == nil {
		d.jobs = map[string]*jobView{}
	}
	v := d.jobs[j.Key]
	changed := v == nil || v.State != j.State
	if v == nil {
		v = &jobView{since: now}
		d.jobs[j.Key] = v
	}
	v.Job = j
	if !j.Created.IsZero() {
		v.since = j.Created
	}
	if changed {
		d.clear()
		_, _ = io.WriteString(d.w, jobLine(v, now)+"\n")
	}
	if j.Ended {
		delete(d.jobs, j.Key)
	}
	if changed || now.Sub(d.lastDesc) >= d.throttle {
		d.lastDesc = now
		d.bar.Describe(d.describe(now)) // redraws the bar, unless the library's throttle holds it back
	}
	if changed {
		// The line cleared the bar: draw it again below (its latest rendering starts with "\r").
		_, _ = io.WriteString(d.w, d.bar.String())
	}
	d.noteDrawn()
}

// jobLine is a job's state for a line of its own.
func jobLine(v *jobView, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "batch job %s %s", v.Key, v.Lane)
	if v.ID != "" {
		fmt.Fprintf(&b, " %s", v.ID)
	}
	fmt.Fprintf(&b, ": %s, %s of %s lines done", v.State, count(int64(v.Done)), count(int64(v.Total)))
	if v.Failed > 0 {
		fmt.Fprintf(&b, ", %s failed", count(int64(v.Failed)))
	}
	fmt.Fprintf(&b, ", age %s", age(now, v.since))
	return b.String()
}

// jobsDesc is the live jobs' part of the bar's description: "3 batch jobs 1.2k/150k, oldest 4m0s".
func (d *Display) jobsDesc(now time.Time) string {
	if len(d.jobs) == 0 {
		return ""
	}
	var done, total int
	oldest := now
	for _, v := range d.jobs {
		done += v.Done
		total += v.Total
		if v.since.Before(oldest) {
			oldest = v.since
		}
	}
	noun := "batch jobs"
	if len(d.jobs) == 1 {
		noun = "batch job"
	}
	return fmt.Sprintf("%d %s %s/%s, oldest %s", len(d.jobs), noun, humanize(float64(done)), humanize(float64(total)), age(now, oldest))
}

// age is the time from since to now in whole seconds, never negative (a provider's clock may run
// ahead of ours).
func age(now, since time.Time) time.Duration {
	return max(now.Sub(since), 0).Truncate(time.Second)
}
