package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// The data-safety tests: a crash, Ctrl-C, a full disk or a budget never loses a paid-for result or
// pays for one twice. They drive `llmbatch run` end to end against the in-process simulator (see
// simRun) in virtual time; TestKillAtFractionsThenResume (run_kill_test.go) does the same with a
// real process and SIGKILL.

const safetyConfig = `
defaults: {concurrency: 64, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, input_per_mtok: 100, output_per_mtok: 400}
    sim: {latency: 500ms, jitter: 0.5}
`

// exec runs `llmbatch args...` with the simulator's factory and signal channel sigs, returning the
// exit code; stdout and stderr are reset first.
func (s *simRun) exec(sigs <-chan os.Signal, args ...string) int {
	s.t.Helper()
	s.stdout.Reset()
	s.stderr.Reset()
	return Execute(context.Background(), s.factory(sigs), args)
}

// sent is the number of requests the simulator received.
func (s *simRun) sent() int { return s.stats("s1/m-small").Requests }

// writePrompts replaces the input with the given id → text prompts, in id order.
func (s *simRun) writePrompts(prompts map[string]string) {
	s.t.Helper()
	var in bytes.Buffer
	for _, id := range slices.Sorted(maps.Keys(prompts)) {
		line, _ := json.Marshal(map[string]any{"id": id, "prompt": prompts[id], "max_tokens": 50})
		in.Write(append(line, '\n'))
	}
	if err := os.WriteFile(s.input, in.Bytes(), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.prompts = prompts
}

func readOutput(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestSafetyTornLastLineIsRepaired(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(line string) string // what the crash left of the next line
	}{
		{"half a line", func(l string) string { return l[:len(l)/2] }},
		{"whole object without its newline", func(l string) string { return strings.TrimSuffix(l, "\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, safetyConfig, 60, 40)
				if code, _ := s.run(); code != ExitOK {
					t.Fatalf("exit %d: %s", code, s.stderr.String())
				}
				lines := strings.SplitAfter(readOutput(t, s.output), "\n")
				lines = lines[:len(lines)-1] // the empty string after the last newline
				const lost = 8               // results the crash lost, the first of them torn
				kept := strings.Join(lines[:len(lines)-lost], "")
				if err := os.WriteFile(s.output, []byte(kept+tc.tail(lines[len(lines)-lost])), 0o644); err != nil {
					t.Fatal(err)
				}
				before := s.sent()
				if code, _ := s.run(); code != ExitOK {
					t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
				}
				s.allOK()
				out := readOutput(t, s.output)
				if !strings.HasPrefix(out, kept) {
					t.Error("the complete lines before the torn one were not kept byte for byte")
				}
				if sent := s.sent() - before; sent != lost {
					t.Errorf("resume sent %d requests, want the %d without a complete line", sent, lost)
				}
			})
		})
	}
}

func TestSafetyChangedPromptIsResentOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, safetyConfig, 40, 40)
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		oldHash := s.allOK()["p00011"].RequestHash
		prompts := maps.Clone(s.prompts)
		prompts["p00011"] = "Label this one instead: the soup was cold."
		s.writePrompts(prompts)

		before := s.sent()
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		if sent := s.sent() - before; sent != 1 {
			t.Errorf("resume sent %d requests, want 1 (the changed prompt)", sent)
		}
		got := s.allOK() // one line per id, each answer its prompt's: the old answer was compacted away
		if r := got["p00011"]; r.RequestHash == oldHash || !strings.HasPrefix(r.Content, sim.Digest([]string{prompts["p00011"]})) {
			t.Errorf("p00011 kept its old line: %+v", r)
		}
		// Nothing is left to do: a third run sends nothing.
		before = s.sent()
		if code, _ := s.run(); code != ExitOK || s.sent() != before {
			t.Errorf("third run: exit %d, %d requests", code, s.sent()-before)
		}
	})
}

func TestSafetyInterruptThenResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, safetyConfig, 400, 40)
		sigs := make(chan os.Signal, 2)
		done := make(chan int)
		go func() {
			done <- s.exec(sigs, "run", s.input, "-c", s.cfgPath, "-o", s.output, "--concurrency", "16")
		}()
		time.Sleep(5 * time.Second) // virtual: 16 in flight at 0.25–0.75 s each, about 160 answered
		sigs <- os.Interrupt
		code := <-done
		if code != ExitInterrupted {
			t.Fatalf("exit %d, want 130: %s", code, s.stderr.String())
		}
		// The requests in flight at the signal were waited for and written whole.
		lines := s.lines()
		st := s.stats("s1/m-small")
		if len(lines) == 0 || len(lines) >= len(s.prompts) {
			t.Fatalf("%d lines after the interrupt, want some but not all", len(lines))
		}
		if st.Requests != len(lines) || st.OK != len(lines) {
			t.Errorf("%d requests sent, %d answered, %d lines written: in-flight work was lost", st.Requests, st.OK, len(lines))
		}
		if !strings.HasSuffix(readOutput(t, s.output), "\n") {
			t.Error("the output ends with a torn line")
		}
		msg := s.stderr.String()
		if want := fmt.Sprintf("interrupted: %d prompts remain", len(s.prompts)-len(lines)); !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
		_, resume, ok := strings.Cut(msg, "Resume with:\n  ")
		if !ok {
			t.Fatalf("no resume command on stderr:\n%s", msg)
		}
		resume, _, _ = strings.Cut(resume, "\n")
		args := strings.Fields(resume)
		if len(args) < 3 || args[0] != "llmbatch" || args[1] != "run" || args[2] != s.input {
			t.Fatalf("resume command %q", resume)
		}

		// Run exactly the printed command.
		if code := s.exec(nil, args[1:]...); code != ExitOK {
			t.Fatalf("%s: exit %d: %s", resume, code, s.stderr.String())
		}
		s.allOK()
		if total := s.sent(); total != len(s.prompts) {
			t.Errorf("%d requests for %d prompts: some were paid for twice", total, len(s.prompts))
		}
	})
}

// slowConfig answers in 1–19 s, so that requests are in flight at any moment.
const slowConfig = `
defaults: {concurrency: 8, timeout: 120s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}
    sim: {latency: 10s, jitter: 0.9}
`

func TestSafetySecondInterruptStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, slowConfig, 60, 40)
		sigs := make(chan os.Signal, 2)
		done := make(chan int)
		start := time.Now()
		go func() { done <- s.exec(sigs, "run", s.input, "-c", s.cfgPath, "-o", s.output) }()
		time.Sleep(12 * time.Second)
		sigs <- os.Interrupt
		time.Sleep(time.Second)
		sigs <- os.Interrupt
		code := <-done
		elapsed := time.Since(start)
		if code != ExitInterrupted {
			t.Fatalf("exit %d, want 130: %s", code, s.stderr.String())
		}
		if elapsed > 13*time.Second+100*time.Millisecond {
			t.Errorf("the second interrupt took %s to stop the run", elapsed-13*time.Second)
		}
		lines := s.lines() // whole lines, each answer its prompt's
		st := s.stats("s1/m-small")
		t.Logf("stopped after %s: %d lines, %d sent, %d answered, %d abandoned", elapsed, len(lines), st.Requests, st.OK, st.Canceled)
		if st.Canceled == 0 {
			t.Error("no request was in flight at the second interrupt: the test proves nothing")
		}
		if st.OK != len(lines) {
			t.Errorf("%d answers received, %d written", st.OK, len(lines))
		}
		if code := s.exec(nil, "run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet"); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		if paid := s.stats("s1/m-small").OK; paid != len(s.prompts) {
			t.Errorf("%d answers for %d prompts", paid, len(s.prompts))
		}
	})
}

func TestSafetyInterruptGraceIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, strings.Replace(slowConfig, "latency: 10s, jitter: 0.9", "latency: 100s", 1), 10, 40)
		sigs := make(chan os.Signal, 1)
		done := make(chan int)
		start := time.Now()
		go func() { done <- s.exec(sigs, "run", s.input, "-c", s.cfgPath, "-o", s.output) }()
		time.Sleep(time.Second)
		sigs <- os.Interrupt
		code := <-done
		elapsed := time.Since(start)
		if code != ExitInterrupted {
			t.Fatalf("exit %d, want 130: %s", code, s.stderr.String())
		}
		// The engine's grace period is 30 s: the 100 s requests are abandoned then.
		if elapsed < 30*time.Second || elapsed > 32*time.Second {
			t.Errorf("the run stopped %s after the interrupt, want after the 30 s grace", elapsed-time.Second)
		}
		if !strings.Contains(s.stderr.String(), "abandoned") || !strings.Contains(s.stderr.String(), "10 prompts remain") {
			t.Errorf("stderr:\n%s", s.stderr.String())
		}
	})
}

// fillingDisk is an output file on a disk with room for limit more bytes: the write that does not
// fit is cut short (a torn line) and fails with ENOSPC, as write(2) does.
type fillingDisk struct {
	*os.File
	limit    int
	failed   bool
	failedAt time.Time
	written  bytes.Buffer // what reached the file
}

func (d *fillingDisk) Write(p []byte) (int, error) {
	if len(p) > d.limit {
		n, _ := d.File.Write(p[:d.limit])
		d.written.Write(p[:n])
		d.limit, d.failed, d.failedAt = 0, true, time.Now()
		return n, &os.PathError{Op: "write", Path: d.Name(), Err: syscall.ENOSPC}
	}
	d.limit -= len(p)
	d.written.Write(p)
	return d.File.Write(p)
}

func TestSafetyFullDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Answers take 0.5–9.5 s, so requests are in flight when the disk fills.
		s := newSimRun(t, strings.Replace(safetyConfig, "latency: 500ms, jitter: 0.5", "latency: 5s, jitter: 0.9", 1), 400, 40)
		var disk *fillingDisk
		f := s.factory(nil)
		f.OpenOutput = func(path string) (io.WriteCloser, error) {
			file, err := results.OpenAppend(path)
			disk = &fillingDisk{File: file, limit: 30 << 10}
			return disk, err
		}
		code := Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet"})
		if code != ExitPartial {
			t.Fatalf("exit %d, want 1: %s", code, s.stderr.String())
		}
		if disk == nil || !disk.failed {
			t.Fatal("the disk never filled up")
		}
		// Their answers could not be written: the run does not wait for the requests in flight.
		if d := time.Since(disk.failedAt); d > 100*time.Millisecond {
			t.Errorf("the run ended %s after the write failure", d)
		}
		msg := s.stderr.String()
		if !strings.Contains(msg, s.output) || !strings.Contains(msg, "no space left on device") {
			t.Errorf("the error does not name the file and the cause:\n%s", msg)
		}
		written := disk.written.String()
		complete := strings.Count(written, "\n")
		// Dispatch stopped at once: besides the lines written and the failed one, at most the
		// requests then in flight were sent.
		if sent := s.sent(); sent > complete+1+64 {
			t.Errorf("%d requests sent, %d lines written: dispatch went on after the disk filled", sent, complete)
		}
		if got := readOutput(t, s.output); got != written {
			t.Fatal("the output is not what the writer wrote (was it rewritten after the failure?)")
		}
		// What was written stays usable: the scan drops the torn line and keeps every complete one.
		cp, err := results.Scan(s.output, results.FormatDefault)
		if err != nil {
			t.Fatalf("scan after the failure: %v", err)
		}
		if cp.Lines != complete || cp.TornLine != complete+1 {
			t.Errorf("scan: %d lines, torn line %d; want %d complete lines and the next torn", cp.Lines, cp.TornLine, complete)
		}
		// Once there is room again, the same command completes the batch.
		before := s.sent()
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		if sent := s.sent() - before; sent != len(s.prompts)-complete {
			t.Errorf("resume sent %d requests, want the %d without a line", sent, len(s.prompts)-complete)
		}
	})
}

func TestSafetyBudgetUnderConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prompt func(i int) string
	}{
		{"prose", func(i int) string {
			return fmt.Sprintf("Label item %d as positive or negative: %s", i, strings.Repeat("lorem ipsum ", 4))
		}},
		// Runs of spaces are cheap for tiktoken but the simulator, like providers that estimate,
		// bills them at 4 bytes a token.
		{"whitespace", func(i int) string { return fmt.Sprintf("Label item %d:%sfine.", i, strings.Repeat(" ", 300)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, safetyConfig, 0, 0)
				prompts := map[string]string{}
				for i := range 400 {
					prompts[fmt.Sprintf("p%05d", i)] = tc.prompt(i)
				}
				s.writePrompts(prompts)
				// Find a cap that fits about half the batch from estimate's projection.
				if code := s.exec(nil, "estimate", s.input, "-c", s.cfgPath, "--json"); code != ExitOK {
					t.Fatalf("estimate: exit %d: %s", code, s.stderr.String())
				}
				var est struct {
					CostUSD float64 `json:"cost_usd"`
				}
				if err := json.Unmarshal(s.stdout.Bytes(), &est); err != nil {
					t.Fatal(err)
				}
				limit := est.CostUSD / 2
				capFlag := fmt.Sprintf("%.6f", limit)

				// estimate warns when its projection exceeds --max-cost, and only then.
				if code := s.exec(nil, "estimate", s.input, "-c", s.cfgPath, "--max-cost", capFlag); code != ExitOK ||
					!strings.Contains(s.stderr.String(), "exceeds --max-cost") {
					t.Errorf("estimate --max-cost %s: exit %d, no warning:\n%s", capFlag, code, s.stderr.String())
				}
				if s.exec(nil, "estimate", s.input, "-c", s.cfgPath, "--max-cost", "1000"); strings.Contains(s.stderr.String(), "exceeds") {
					t.Errorf("estimate warns under a generous budget:\n%s", s.stderr.String())
				}

				code := s.exec(nil, "run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet", "--max-cost", capFlag, "--concurrency", "64")
				if code != ExitBudget {
					t.Fatalf("exit %d, want 3: %s", code, s.stderr.String())
				}
				spent, ok := 0.0, 0
				lines := s.lines()
				for _, r := range lines {
					if r.Status == results.StatusOK {
						spent += r.CostUSD
						ok++
					}
				}
				t.Logf("estimate $%.4f; cap $%.4f: %d of %d answered for $%.4f", est.CostUSD, limit, ok, len(prompts), spent)
				if spent > limit {
					t.Errorf("spent $%.6f, above the $%.6f cap", spent, limit)
				}
				if ok != len(lines) || ok < len(prompts)/4 || ok >= len(prompts) {
					t.Errorf("%d lines, %d ok of %d prompts: want about half, all ok", len(lines), ok, len(prompts))
				}
				if st := s.stats("s1/m-small"); st.OK != ok {
					t.Errorf("%d answers paid for, %d written", st.OK, ok)
				}
				if want := fmt.Sprintf("%d prompts remain", len(prompts)-ok); !strings.Contains(s.stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, s.stderr.String())
				}
				// Without the cap, the rest is sent and nothing twice.
				before := s.sent()
				if code, _ := s.run(); code != ExitOK {
					t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
				}
				s.allOK()
				if sent := s.sent() - before; sent != len(prompts)-ok {
					t.Errorf("resume sent %d, want %d", sent, len(prompts)-ok)
				}
			})
		})
	}
}

func TestSafetyFreshMovesTheOutputAside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, safetyConfig, 30, 40)
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		first := readOutput(t, s.output)
		var backups []string
		for i := range 2 {
			time.Sleep(time.Second) // distinct backup names are not required, but realistic
			if code, _ := s.run("--fresh"); code != ExitOK {
				t.Fatalf("--fresh: exit %d: %s", code, s.stderr.String())
			}
			s.allOK()
			if s.sent() != (i+2)*len(s.prompts) {
				t.Errorf("--fresh run %d: %d requests in all, want every prompt sent again", i+1, s.sent())
			}
			var err error
			backups, err = filepath.Glob(s.output + ".*.bak")
			if err != nil || len(backups) != i+1 {
				t.Fatalf("backups %v (%v), want %d", backups, err, i+1)
			}
		}
		slices.Sort(backups)
		if got := readOutput(t, backups[0]); got != first {
			t.Error("the first backup is not the first run's output")
		}
	})
}

func TestSafetyOpenAIFormatRoundTrips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, safetyConfig, 50, 40)
		if code, _ := s.run("--format", "openai"); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		check := func() {
			t.Helper()
			seen := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSuffix(readOutput(t, s.output), "\n"), "\n") {
				var l struct {
					ID       string `json:"id"`
					CustomID string `json:"custom_id"`
					Response struct {
						StatusCode int `json:"status_code"`
						Body       struct {
							Choices []struct {
								Message struct{ Content string }
							}
						}
					}
					Error       any    `json:"error"`
					RequestHash string `json:"request_hash"`
				}
				if err := json.Unmarshal([]byte(line), &l); err != nil {
					t.Fatalf("bad line %q: %v", line, err)
				}
				if seen[l.CustomID] {
					t.Fatalf("two lines for %s", l.CustomID)
				}
				seen[l.CustomID] = true
				if l.ID == "" || l.Response.StatusCode != 200 || l.Error != nil || len(l.Response.Body.Choices) != 1 ||
					!strings.HasPrefix(l.Response.Body.Choices[0].Message.Content, sim.Digest([]string{s.prompts[l.CustomID]})) {
					t.Fatalf("not an OpenAI Batch success line answering %s: %s", l.CustomID, line)
				}
			}
			if len(seen) != len(s.prompts) {
				t.Fatalf("%d ids for %d prompts", len(seen), len(s.prompts))
			}
		}
		check()
		// Lose the last 15 lines, the first of them torn, and resume in the same format.
		lines := strings.SplitAfter(readOutput(t, s.output), "\n")
		torn := strings.Join(lines[:35], "") + lines[35][:len(lines[35])/3]
		if err := os.WriteFile(s.output, []byte(torn), 0o644); err != nil {
			t.Fatal(err)
		}
		before := s.sent()
		if code, _ := s.run("--format", "openai"); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		if sent := s.sent() - before; sent != 15 {
			t.Errorf("resume sent %d, want 15", sent)
		}
		check()
		// Resuming it as the default format is refused before anything is sent.
		before = s.sent()
		if code, _ := s.run(); code != ExitUsage || s.sent() != before {
			t.Errorf("default-format resume of an openai output: exit %d, %d sent", code, s.sent()-before)
		}
		check()
	})
}

func TestSafetyStdoutStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, safetyConfig, 80, 40)
		if code := s.exec(nil, "run", s.input, "-c", s.cfgPath, "-o", "-"); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		if _, err := os.Stat(s.output); !os.IsNotExist(err) {
			t.Errorf("-o - created %s", s.output)
		}
		if strings.Contains(s.stderr.String(), `"custom_id"`) {
			t.Error("result lines on stderr")
		}
		if err := os.WriteFile(s.output, s.stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		s.allOK() // stdout holds exactly one ok line per prompt, each its prompt's answer
	})
}

// Ctrl-C during the checks before anything is sent stops run, estimate and select at once with exit
// 130: no request, no output file, nothing printed on stdout.
func TestSafetyInterruptDuringChecksStopsAtOnce(t *testing.T) {
	s := newSimRun(t, safetyConfig, 50, 40)
	for _, args := range [][]string{
		{"run", s.input, "-c", s.cfgPath, "-o", s.output},
		{"estimate", s.input, "-c", s.cfgPath},
		{"select", s.input, "-c", s.cfgPath},
	} {
		sigs := make(chan os.Signal, 1)
		sigs <- os.Interrupt
		if code := s.exec(sigs, args...); code != ExitInterrupted {
			t.Errorf("%s: exit %d, want %d\n%s", args[0], code, ExitInterrupted, s.stderr.String())
		}
		if !strings.Contains(s.stderr.String(), "interrupted") || s.stdout.Len() != 0 {
			t.Errorf("%s: stderr %q, stdout %q; want an interrupted message and no output", args[0], s.stderr.String(), s.stdout.String())
		}
	}
	if _, err := os.Stat(s.output); !os.IsNotExist(err) || s.sent() != 0 {
		t.Errorf("output stat: %v, %d requests sent; want no file and nothing sent", err, s.sent())
	}
}
