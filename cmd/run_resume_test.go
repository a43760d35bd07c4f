package cmd

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

const resumeConfig = `
defaults: {concurrency: 64, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, rpm: 600, input_per_mtok: 100, output_per_mtok: 400}
    sim: {latency: 500ms, jitter: 0.2}
`

func TestResumeRepairsTornLastLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, resumeConfig, 50, 40)
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		data, _ := os.ReadFile(s.output)
		lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
		// Drop the last ten results and leave half of the next one, as a crash mid-write would.
		kept := strings.Join(lines[:len(lines)-11], "")
		torn := lines[len(lines)-11][:len(lines[len(lines)-11])/2]
		if err := os.WriteFile(s.output, []byte(kept+torn), 0o644); err != nil {
			t.Fatal(err)
		}
		before := s.stats("s1/m-small").Requests
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		if sent := s.stats("s1/m-small").Requests - before; sent != 11 {
			t.Errorf("resume sent %d requests, want the 11 without a complete line", sent)
		}
	})
}

func TestResumeResendsChangedPrompt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, resumeConfig, 30, 40)
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		// Change the text of p00007 but keep its id.
		data, _ := os.ReadFile(s.input)
		changed := "Label item seven again, differently: terrible."
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if strings.Contains(line, `"id":"p00007"`) {
				b, _ := json.Marshal(map[string]any{"id": "p00007", "prompt": changed, "max_tokens": 50})
				line = string(b)
			}
			out = append(out, line)
		}
		if err := os.WriteFile(s.input, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s.prompts["p00007"] = changed
		before := s.stats("s1/m-small").Requests
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		if sent := s.stats("s1/m-small").Requests - before; sent != 1 {
			t.Errorf("resume sent %d requests, want 1 (the changed prompt)", sent)
		}
		// Compaction leaves one line for it: the new answer (lines() checks the digest).
		s.allOK()
	})
}

func TestInterruptThenResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, resumeConfig, 300, 40)
		sigs := make(chan os.Signal, 2)
		done := make(chan int)
		go func() {
			done <- Execute(context.Background(), s.factory(sigs), []string{"run", s.input, "-c", s.cfgPath, "-o", s.output})
		}()
		time.Sleep(10 * time.Second) // virtual: about 100 prompts are answered by then
		sigs <- os.Interrupt
		code := <-done
		if code != ExitInterrupted {
			t.Fatalf("exit %d, want 130: %s", code, s.stderr.String())
		}
		if !strings.Contains(s.stderr.String(), "Resume with:\n  llmbatch run "+s.input) {
			t.Errorf("no resume command on stderr:\n%s", s.stderr.String())
		}
		first := len(s.lines()) // every line whole and belonging to its prompt
		if first == 0 || first >= len(s.prompts) {
			t.Fatalf("%d lines after the interrupt, want some but not all", first)
		}
		before := s.stats("s1/m-small").Requests
		if code, _ := s.run(); code != ExitOK {
			t.Fatalf("resume: exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		// In-flight requests were waited for and written, so nothing is answered twice.
		if total := s.stats("s1/m-small").Requests; total != len(s.prompts) {
			t.Errorf("%d requests for %d prompts (%d before the resume)", total, len(s.prompts), before)
		}
	})
}

func TestBudgetCapUnderConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, resumeConfig, 400, 40)
		// Each prompt costs about 30 input tokens × $100/M + up to 50 output × $400/M ≈ $0.02 reserved;
		// $2 fits about half of them.
		const limit = 2.0
		code, _ := s.run("--max-cost", "2", "--concurrency", "64")
		if code != ExitBudget {
			t.Fatalf("exit %d, want 3: %s", code, s.stderr.String())
		}
		total, ok := 0.0, 0
		for _, r := range s.lines() {
			total += r.CostUSD
			ok++
		}
		t.Logf("budget: %d prompts answered for $%.4f of $%.2f", ok, total, limit)
		if total > limit {
			t.Errorf("spent $%.4f, above the $%.2f cap", total, limit)
		}
		if ok == 0 || ok >= len(s.prompts) {
			t.Errorf("%d of %d prompts answered, want a part", ok, len(s.prompts))
		}
		if !strings.Contains(s.stderr.String(), "prompts remain") {
			t.Errorf("stderr does not say how many prompts remain:\n%s", s.stderr.String())
		}
	})
}

// enospc is an output that fills up after limit bytes.
type enospc struct {
	written, limit int
}

func (w *enospc) Write(p []byte) (int, error) {
	if w.written+len(p) > w.limit {
		n := w.limit - w.written
		w.written = w.limit
		return n, syscall.ENOSPC
	}
	w.written += len(p)
	return len(p), nil
}

func TestFullDiskStopsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, resumeConfig, 200, 40)
		f := s.factory(nil)
		out := &enospc{limit: 20 << 10}
		f.IO.Out = out
		code := Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", "-"})
		if code == ExitOK {
			t.Fatal("a full disk went unnoticed")
		}
		if msg := s.stderr.String(); !strings.Contains(msg, "no space left on device") {
			t.Errorf("stderr does not explain the failure:\n%s", msg)
		}
		// Dispatch stopped at once: far fewer requests than prompts went out.
		if sent := s.stats("s1/m-small").Requests; sent >= len(s.prompts) {
			t.Errorf("%d requests sent after the disk filled, of %d prompts", sent, len(s.prompts))
		}
		if out.written != out.limit {
			t.Errorf("the writer saw %d bytes, want the run to have filled it", out.written)
		}
	})
}
