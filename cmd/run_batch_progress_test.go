package cmd

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
)

// TestRunViaBatchShowsJobsInProgress: with the bar drawn, run --via batch shows every provider
// job's states on lines of their own with its line counts and age (the batch runner's poll hook
// feeds the display).
func TestRunViaBatchShowsJobsInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, batchConfig("openai", "{turnaround: 10m}"), 50, 40)
		code := Execute(context.Background(), s.factory(nil), []string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--via", "batch", "--progress", "always"})
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		screen := strings.Join(emulateScreen(s.stderr.String()), "\n")
		for _, re := range []string{
			`batch job c1 sb/m \S+: (validating|in_progress), \d+ of 50 lines done, age \d+s`,
			`batch job c1 sb/m \S+: completed, 50 of 50 lines done(, \d+ failed)?, age 10m\d+s`,
		} {
			if !regexp.MustCompile(re).MatchString(screen) {
				t.Errorf("stderr lacks %s:\n%s", re, screen)
			}
		}
	})
}

// emulateScreen is what a terminal keeps of out, line by line: the text after a line's last
// carriage return (the bar redraws in place; log and job lines clear it first).
func emulateScreen(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.LastIndexByte(l, '\r'); i >= 0 {
			l = l[i+1:]
		}
		lines = append(lines, strings.TrimRight(l, " "))
	}
	return lines
}
