package cmd

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
)

// budgetMessage matches run's exit-3 message; its groups are the prompts left, the least worst
// case among them, what remained of the cap and the cap that lets them all run.
var budgetMessage = regexp.MustCompile(`budget of \$[0-9.]+ reached: (\d+) prompts remain, left unsent because the worst case of each \(\$[0-9.]+ together, the least \$([0-9.]+)\) does not fit the \$([0-9.]+) left beside the \$[0-9.]+ this job spent.*; --max-cost ([0-9.]+) lets them all run`)

// The demo (DESIGN §8, issue 12): with --max-cost 1 every prompt completes; with half the demo's
// actual cost the run spends at least 85% of the cap, or every prompt it left unsent has a worst
// case above what remained, never more than the cap, and exits 3 saying how many were left, their
// worst case and the cap that lets them run; resuming with the same cap sends nothing more (the
// earlier spend counts); resuming with the cap it named completes the job within that cap.
func TestRunBudgetSpendsUpToTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, input, cfg, output, _, stderr := demoJob(t)
		run := func(maxCost string, extra ...string) int {
			stderr.Reset()
			return Execute(context.Background(), f, append([]string{"run", input, "-c", cfg, "--quiet", "--max-cost", maxCost}, extra...))
		}
		if code := run("1"); code != ExitOK {
			t.Fatalf("--max-cost 1: exit %d, want 0 (every prompt done):\n%s", code, stderr)
		}
		full, _ := actualCosts(t, output)
		if n := len(readLines(t, output)); n != 237 || full > 1 {
			t.Fatalf("--max-cost 1: %d lines for $%v; want all 237 within $1", n, full)
		}

		limit := full / 2
		capFlag := strconv.FormatFloat(limit, 'f', 6, 64)
		limit, _ = strconv.ParseFloat(capFlag, 64)
		if code := run(capFlag, "--fresh"); code != ExitBudget {
			t.Fatalf("--max-cost %s: exit %d, want 3:\n%s", capFlag, code, stderr)
		}
		spent, _ := actualCosts(t, output)
		m := budgetMessage.FindStringSubmatch(stderr.String())
		if m == nil {
			t.Fatalf("no budget message:\n%s", stderr)
		}
		left, _ := strconv.Atoi(m[1])
		least, _ := strconv.ParseFloat(m[2], 64)
		remained, _ := strconv.ParseFloat(m[3], 64)
		need, _ := strconv.ParseFloat(m[4], 64)
		lines := len(readLines(t, output))
		t.Logf("cap $%v (half of $%v): spent $%v (%.0f%%), %d answered, %d left; least worst case $%v, $%v remained; cap to finish %v",
			limit, full, spent, 100*spent/limit, lines, left, least, remained, need)
		if spent > limit {
			t.Errorf("spent $%v, above the $%v cap", spent, limit)
		}
		if lines+left != 237 {
			t.Errorf("%d lines + %d left != 237 prompts", lines, left)
		}
		if spent < 0.85*limit && least <= limit-spent {
			t.Errorf("spent $%v of $%v, yet a prompt left unsent had a worst case of $%v, within the $%v that remained", spent, limit, least, limit-spent)
		}
		if want := fmt.Sprintf("$%.4f", limit-spent); remained > limit-spent+1e-4 || remained < limit-spent-1e-4 {
			t.Errorf("message says $%v remained, want about %s", remained, want)
		}

		before, err := os.ReadFile(output)
		if err != nil {
			t.Fatal(err)
		}
		if code := run(capFlag); code != ExitBudget {
			t.Fatalf("resume with the same cap: exit %d, want 3:\n%s", code, stderr)
		}
		after, _ := os.ReadFile(output)
		if string(after) != string(before) {
			t.Errorf("resuming with the same cap sent more: the output grew from %d to %d bytes", len(before), len(after))
		}
		if !strings.Contains(stderr.String(), "by earlier runs") {
			t.Errorf("the resumed run's message does not count the earlier spend:\n%s", stderr)
		}

		if code := run(strconv.FormatFloat(need, 'f', 2, 64)); code != ExitOK {
			t.Fatalf("resume with the cap the message named ($%v): exit %d:\n%s", need, code, stderr)
		}
		total, _ := actualCosts(t, output)
		if n := len(readLines(t, output)); n != 237 || total > need {
			t.Errorf("with --max-cost %v: %d lines, $%v spent in all", need, n, total)
		}
	})
}

// readLines returns the lines of path (each result line ends with a newline).
func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
}
