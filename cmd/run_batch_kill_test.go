package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// TestKillBatchRunAtEachStepThenResume builds the binary, serves the simulator from another process
// and runs `llmbatch run --via batch` as a child, SIGKILLing it after an upload (OpenAI), after a
// job's creation, while it polls, and halfway through a download; then the same command completes.
// After each, every prompt has exactly one ok line whose answer belongs to it, and the simulator's
// counters show every prompt sent in one batch job only (none in two live jobs) and answered once.
func TestKillBatchRunAtEachStepThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "llmbatch")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	addr := startSimServer(t, bin, write("sim.yaml", `
providers:
  - {name: so, type: sim, sim: {api: openai, batch: {turnaround: 1500ms}}, models: [{name: mo}]}
  - {name: sa, type: sim, sim: {api: anthropic, batch: {turnaround: 1500ms}}, models: [{name: ma}]}
  - {name: sg, type: sim, sim: {api: gemini, batch: {turnaround: 1500ms}}, models: [{name: mg}]}
`))
	const n = 300
	prompts, err := exec.Command(bin, "sim", "prompts", fmt.Sprint(n)).Output()
	if err != nil {
		t.Fatal(err)
	}
	input := write("prompts.jsonl", string(prompts))
	// The runs learn batch turnarounds into a history under the test's directory, not the user's.
	env := append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
	texts := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(prompts)), "\n") {
		var p struct{ ID, Prompt string }
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatal(err)
		}
		texts[p.ID] = p.Prompt
	}
	for _, d := range []struct{ name, typ, base, model string }{
		{"so", "openai", "/sim/so/v1", "mo"}, {"sa", "anthropic", "/sim/sa", "ma"}, {"sg", "gemini", "/sim/sg/v1beta", "mg"},
	} {
		for _, at := range []string{"uploaded", "created", "poll", "download"} {
			if at == "uploaded" && d.typ != "openai" {
				continue
			}
			t.Run(d.typ+"/"+at, func(t *testing.T) {
				before := simServed(t, addr)[d.name+"/"+d.model]
				cfg := write(d.name+at+".yaml", fmt.Sprintf(`
providers:
  - name: %s
    type: %s
    base_url: http://%s%s
    batch: {enabled: true, poll: 100ms, max_requests: 100}
    models: [{name: %s, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}]
`, d.name, d.typ, addr, d.base, d.model))
				output := filepath.Join(dir, d.name+at+".results.jsonl")
				journal := output + ".batches"
				args := []string{"run", input, "-c", cfg, "-o", output, "--via", "batch", "--quiet"}
				cmd := exec.Command(bin, args...)
				cmd.Env = env
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				journalHas := func(s string) func() bool {
					return func() bool { b, _ := os.ReadFile(journal); return bytes.Contains(b, []byte(s)) }
				}
				var ready func() bool
				switch at {
				case "uploaded", "created":
					ready = journalHas(`"op":"` + at + `"`)
				case "poll":
					ready = func() bool {
						return journalHas(`"op":"created"`)() && countLines(output) == 0 &&
							simServed(t, addr)[d.name+"/"+d.model].BatchLines >= before.BatchLines+n
					}
				case "download":
					ready = func() bool { return countLines(output) >= 1 }
				}
				if !pollUntil(20*time.Second, ready) {
					_ = cmd.Process.Kill()
					<-exited
					t.Fatalf("never reached %s; stderr:\n%s", at, stderr.String())
				}
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				if err := <-exited; err == nil {
					t.Fatalf("the run finished before the kill at %s", at)
				}
				cp, err := results.Scan(output, results.FormatDefault)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("killed at %s: %d lines in the output", at, cp.Lines)
				resume := exec.Command(bin, args...)
				resume.Env = env
				if out, err := resume.CombinedOutput(); err != nil {
					t.Fatalf("resume: %v\n%s", err, out)
				}
				data, _ := os.ReadFile(output)
				seen := map[string]bool{}
				for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
					var r results.Result
					if err := json.Unmarshal([]byte(line), &r); err != nil {
						t.Fatalf("bad line %q: %v", line, err)
					}
					if seen[r.CustomID] {
						t.Fatalf("two lines for %s", r.CustomID)
					}
					seen[r.CustomID] = true
					if r.Status != results.StatusOK || r.Via != "batch" || !strings.HasPrefix(r.Content, sim.Digest([]string{texts[r.CustomID]})) {
						t.Fatalf("%s: %s via %q %.40q is not the batch answer to its prompt", r.CustomID, r.Status, r.Via, r.Content)
					}
				}
				if len(seen) != n {
					t.Fatalf("%d ids in the output, %d prompts", len(seen), n)
				}
				after := simServed(t, addr)[d.name+"/"+d.model]
				lines, ok, dup := after.BatchLines-before.BatchLines, after.BatchOK-before.BatchOK, after.BatchDuplicateLive-before.BatchDuplicateLive
				if lines != n || ok != n || dup != 0 {
					t.Errorf("simulator: %d lines sent in batch jobs, %d answered, %d sent while live elsewhere; want %d, %d, 0", lines, ok, dup, n, n)
				}
			})
		}
	}
}
