package cmd

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"unicode/utf8"
)

// A cheap provider that refuses the key and a good one: the cheap one is disabled mid-run with a
// warning while the bar is drawn.
const disabledMidRunConfig = `
defaults: {concurrency: 8, timeout: 30s}
providers:
  - name: bad
    type: sim
    models:
      - {name: m-bad, category: small, input_per_mtok: 0.01, output_per_mtok: 0.01}
    sim: {latency: 50ms, faults: {auth: 1}}
  - name: good
    type: sim
    models:
      - {name: m-good, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4, rpm: 600}
    sim: {latency: 50ms}
`

// screen plays terminal output as a terminal shows it: "\r" returns to the line's start, "\n"
// starts a new line, "\x1b[2K" erases the line, other runes overwrite.
func screen(out string) []string {
	lines := [][]rune{{}}
	row, col := 0, 0
	for i := 0; i < len(out); {
		if strings.HasPrefix(out[i:], "\x1b[2K") {
			lines[row] = lines[row][:0]
			i += len("\x1b[2K")
			continue
		}
		r, size := utf8.DecodeRuneInString(out[i:])
		i += size
		switch r {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
			if row == len(lines) {
				lines = append(lines, []rune{})
			}
		default:
			for len(lines[row]) <= col {
				lines[row] = append(lines[row], ' ')
			}
			lines[row][col] = r
			col++
		}
	}
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = strings.TrimRight(string(l), " ")
	}
	return s
}

// With the bar drawn (--progress always), the run's warnings land on lines of their own, whole, and
// once the run ends no trace of the bar is left on the screen.
func TestRunLogsNeverLandInsideTheBar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, disabledMidRunConfig, 200, 40)
		code := Execute(context.Background(), s.factory(nil), []string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--progress", "always"})
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		out := s.stderr.String()
		if !strings.Contains(out, "(0/200)") {
			t.Fatalf("the bar was never drawn:\n%q", out)
		}
		warn := regexp.MustCompile(`^time=\S+ level=WARN msg="provider disabled for the rest of the run" provider=bad`)
		warned := 0
		for _, l := range screen(out) {
			if warn.MatchString(l) {
				warned++
			}
			if strings.Contains(l, "█") || strings.Contains(l, "/200)") {
				t.Errorf("a trace of the bar is left on the screen: %q", l)
			}
			if strings.Contains(l, "level=") && !strings.HasPrefix(l, "time=") {
				t.Errorf("a log line does not start its own line: %q", l)
			}
		}
		if warned != 1 {
			t.Errorf("the warning shows %d times on the screen, want once:\n%s", warned, strings.Join(screen(out), "\n"))
		}
	})
}
