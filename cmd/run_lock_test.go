package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/internal/testkit"
	"github.com/llmbatch/llmbatch/pkg/results"
)

// The one-writer tests of issue 17: two processes on one output, a symlinked output, the input as
// output, and SIGHUP. The multi-process ones build the binary and run it as a user would.

// buildBinary builds llmbatch into a temporary directory and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "llmbatch")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// slowSimConfig is a simulator slow enough (n prompts at 4 in flight, 40 ms each) that a run lasts
// long enough for a second process or a signal to arrive while it works.
const slowSimConfig = `
defaults: {concurrency: 4, timeout: 10s}
providers:
  - name: s1
    type: sim
    models: [{name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}]
    sim: {latency: 40ms}
`

// binRun is a started `llmbatch` child process.
type binRun struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{} // closed when the process has exited
	err            error         // its exit status, once done
}

func startBin(t *testing.T, bin string, args ...string) *binRun {
	t.Helper()
	r := &binRun{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// running reports whether the process has not exited yet.
func (r *binRun) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// wait returns the process's exit code (-1 when killed by a signal).
func (r *binRun) wait() int {
	<-r.done
	err := r.err
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// okIDs parses an output and returns how many ok lines each id has; it fails on a bad line.
func okIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(readOutput(t, path), "\n"), "\n") {
		var r results.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, line, err)
		}
		if r.Status == results.StatusOK {
			ids[r.CustomID]++
		}
	}
	return ids
}

// TestSecondRunOnTheSameOutputExits2 is issue 17 row 1: while one `llmbatch run` writes an output,
// a second process on the same output (same input, a different input, and a different input with
// --fresh, reaching it through a symlink) exits 2 at once naming the holder, and the first run
// finishes with every result: nothing lost, nothing moved aside.
func TestSecondRunOnTheSameOutputExits2(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "providers.yaml", slowSimConfig)
	const n = 800 // 8 s at 100 requests/s: the second processes all start and end meanwhile
	prompts, err := exec.Command(bin, "sim", "prompts", fmt.Sprint(n)).Output()
	if err != nil {
		t.Fatal(err)
	}
	input := writeFile(t, dir, "a.jsonl", string(prompts))
	other := writeFile(t, dir, "b.jsonl", `{"id":"x1","prompt":"hello"}`+"\n")
	out := filepath.Join(dir, "out.jsonl")
	link := filepath.Join(dir, "link.jsonl")
	if err := os.Symlink("out.jsonl", link); err != nil {
		t.Fatal(err)
	}

	first := startBin(t, bin, "run", input, "-o", out, "-c", cfg, "--quiet")
	if !pollUntil(20e9, func() bool { return countLines(out) >= 5 }) {
		t.Fatalf("the first run wrote nothing; stderr:\n%s", first.stderr.String())
	}
	for _, args := range [][]string{
		{"run", input, "-o", out, "-c", cfg},
		{"run", other, "-o", out, "-c", cfg},
		{"run", other, "-o", link, "-c", cfg, "--fresh"},
	} {
		second := startBin(t, bin, args...)
		code := second.wait()
		if !first.running() {
			t.Fatalf("the first run ended before %v did (a machine too slow for this test?); stderr:\n%s", args, second.stderr.String())
		}
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want 2; stderr:\n%s", args, code, second.stderr.String())
		}
		msg := second.stderr.String()
		if want := fmt.Sprintf("pid %d on host ", first.cmd.Process.Pid); !strings.Contains(msg, want) || !strings.Contains(msg, "another llmbatch run") {
			t.Errorf("%v: stderr %q does not name the holder (%q)", args, msg, want)
		}
	}
	if code := first.wait(); code != ExitOK {
		t.Fatalf("first run: exit %d; stderr:\n%s", code, first.stderr.String())
	}
	ids := okIDs(t, out)
	if len(ids) != n || countLines(out) != n {
		t.Fatalf("%d ok ids and %d lines in the output, want %d of each", len(ids), countLines(out), n)
	}
	if _, ok := ids["x1"]; ok {
		t.Error("the second run's prompt reached the output")
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, name := range names {
		if strings.HasSuffix(name, ".bak") || strings.HasSuffix(name, ".lock") {
			t.Errorf("left behind: %s", name)
		}
	}
	// The lock was released: a resume of the same output now runs (and has nothing to send).
	if out, err := exec.Command(bin, "run", input, "-o", out, "-c", cfg, "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("resume after the first run: %v\n%s", err, out)
	}
}

// TestSIGHUPStopsGracefully is issue 17 row 8: closing the terminal (SIGHUP) stops the run like
// Ctrl-C: the requests in flight finish and are written, the summary and the resume command are
// printed, exit 130, and the resume completes the batch.
func TestSIGHUPStopsGracefully(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "providers.yaml", slowSimConfig)
	const n = 300
	prompts, err := exec.Command(bin, "sim", "prompts", fmt.Sprint(n)).Output()
	if err != nil {
		t.Fatal(err)
	}
	input := writeFile(t, dir, "prompts.jsonl", string(prompts))
	out := filepath.Join(dir, "prompts.results.jsonl")
	run := startBin(t, bin, "run", input, "-c", cfg, "--progress", "never")
	if !pollUntil(20e9, func() bool { return countLines(out) >= 5 }) {
		t.Fatalf("the run wrote nothing; stderr:\n%s", run.stderr.String())
	}
	if err := run.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	code := run.wait()
	stderr := run.stderr.String()
	if code != ExitInterrupted {
		t.Fatalf("exit %d after SIGHUP, want %d; stderr:\n%s", code, ExitInterrupted, stderr)
	}
	for _, want := range []string{"signal=hangup", "prompts:", "remaining", "Resume with:\n  llmbatch run " + input} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	done := countLines(out)
	if done == 0 || done >= n {
		t.Fatalf("%d lines after SIGHUP, want some but not all %d", done, n)
	}
	// The summary's count of remaining prompts is what the output lacks.
	if want := fmt.Sprintf("interrupted: %d prompts remain", n-done); !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if res, err := exec.Command(bin, "run", input, "-c", cfg, "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, res)
	}
	if ids := okIDs(t, out); len(ids) != n || countLines(out) != n {
		t.Fatalf("after the resume: %d ok ids, %d lines; want %d", len(ids), countLines(out), n)
	}
}

// TestRunThroughASymlinkedOutput is issue 17 row 9: an output that is a symlink is written through
// to its target on a fresh run, a resume and its compaction; the link stays a link.
func TestRunThroughASymlinkedOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, safetyConfig, 30, 40)
		target := filepath.Join(s.dir, "store", "results.jsonl")
		if err := os.Mkdir(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("store", "results.jsonl"), s.output); err != nil {
			t.Fatal(err)
		}
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		// Fail one prompt's line so that the resume re-sends it and compaction drops the old line.
		data := readOutput(t, target)
		lines := strings.SplitAfter(data, "\n")
		var r results.Result
		if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
			t.Fatal(err)
		}
		failed := fmt.Sprintf(`{"custom_id":%q,"status":"error","error":{"type":"server_error","message":"boom","status_code":500},"attempts":6,"request_hash":%q}`+"\n", r.CustomID, r.RequestHash)
		if err := os.WriteFile(target, []byte(failed+strings.Join(lines[1:], "")), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		fi, err := os.Lstat(s.output)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the output is no longer a symlink: %v", err)
		}
		s.allOK() // reads through the link: one ok line per prompt, the error line compacted away
		if got := countLines(target); got != 30 {
			t.Errorf("the target holds %d lines, want 30", got)
		}
		if names := testkit.DirNames(t, s.dir); strings.Contains(strings.Join(names, " "), ".lock") {
			t.Errorf("lock file left behind: %v", names)
		}
	})
}

// TestInputAsOutputIsRefused is issue 17 row 5: -o naming the input (directly or through a
// symlink) exits 2 before anything is sent, and --fresh never moves the input aside.
func TestInputAsOutputIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, safetyConfig, 10, 40)
		before := readOutput(t, s.input)
		link := filepath.Join(s.dir, "link.jsonl")
		if err := os.Symlink("prompts.jsonl", link); err != nil {
			t.Fatal(err)
		}
		for _, out := range []string{s.input, link} {
			for _, fresh := range [][]string{nil, {"--fresh"}} {
				args := append([]string{"run", s.input, "-c", s.cfgPath, "-o", out}, fresh...)
				code := s.exec(nil, args...)
				if code != ExitUsage || !strings.Contains(s.stderr.String(), "is the input file") {
					t.Errorf("%v: exit %d, stderr %q; want 2 naming the input", args, code, s.stderr.String())
				}
			}
		}
		if got := readOutput(t, s.input); got != before {
			t.Error("the input changed")
		}
		for _, name := range testkit.DirNames(t, s.dir) {
			if strings.HasSuffix(name, ".bak") || strings.HasSuffix(name, ".lock") {
				t.Errorf("left behind: %s", name)
			}
		}
		if s.sent() != 0 {
			t.Errorf("%d requests sent", s.sent())
		}
	})
}

// TestCancelFindsTheJournalOfASymlinkedOutput: run --via batch keeps its journal next to the
// symlinked output's target; `llmbatch cancel LINK` resolves the link the same way and cancels the
// live jobs, and the resume through the link completes the batch.
func TestCancelFindsTheJournalOfASymlinkedOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, batchConfig("openai", "{turnaround: 2h}"), 50, 40)
		target := filepath.Join(s.dir, "store", "out.jsonl")
		if err := os.Mkdir(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("store", "out.jsonl"), s.output); err != nil {
			t.Fatal(err)
		}
		sigs := make(chan os.Signal, 1)
		done := make(chan int)
		go func() { done <- s.exec(sigs, "run", s.input, "-c", s.cfgPath, "-o", s.output, "--via", "batch") }()
		time.Sleep(time.Hour)
		sigs <- os.Interrupt
		if code := <-done; code != ExitInterrupted {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		if _, err := os.Stat(target + ".batches"); err != nil {
			t.Fatalf("no journal next to the target: %v", err)
		}
		if code := s.exec(nil, "cancel", s.output, "-c", s.cfgPath); code != ExitOK {
			t.Fatalf("cancel through the link: exit %d\n%s%s", code, s.stdout.String(), s.stderr.String())
		}
		if code := s.exec(nil, "run", s.input, "-c", s.cfgPath, "-o", s.output, "--via", "batch"); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		if fi, err := os.Lstat(s.output); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("the output is no longer a symlink: %v", err)
		}
	})
}
