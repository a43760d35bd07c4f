package cmd

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/results"
)

// Every result line carries started_at and finished_at (RFC 3339 with milliseconds): the first
// request's send time and the time the result was decided, inside the run's own wall time, at
// least latency_ms apart.
func TestRunResultTimestamps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, rpmBoundConfig, 40, 40)
		before := time.Now()
		got, _ := s.runOK()
		after := time.Now()
		for id, r := range got {
			start, err := time.Parse(results.TimeLayout, r.StartedAt)
			if err != nil {
				t.Fatalf("%s: started_at %q: %v", id, r.StartedAt, err)
			}
			end, err := time.Parse(results.TimeLayout, r.FinishedAt)
			if err != nil {
				t.Fatalf("%s: finished_at %q: %v", id, r.FinishedAt, err)
			}
			if len(r.StartedAt) != len("2000-01-01T00:00:00.000Z") {
				t.Errorf("%s: started_at %q is not UTC with milliseconds", id, r.StartedAt)
			}
			if start.Before(before.Truncate(time.Millisecond)) || end.After(after) || end.Before(start) {
				t.Errorf("%s: started %s, finished %s: outside the run [%s, %s] or reversed", id, start, end, before, after)
			}
			if d := end.Sub(start).Milliseconds(); d < r.LatencyMS {
				t.Errorf("%s: %d ms between started_at and finished_at, less than latency_ms %d", id, d, r.LatencyMS)
			}
		}
	})
}
