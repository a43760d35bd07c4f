package cmd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/results"
)

// TestKillBatchRunAtEachStepThenResume builds the binary, serves the simulator from another process
// and runs `llmbatch run --via batch` as a child, SIGKILLing it after an upload (OpenAI), after a
// job's creation, while it polls, and halfway through a download; then the same command completes.
// After each, every prompt has exactly one ok line whose answer belongs to it, and the simulator's
// counters show every prompt sent in one batch job only (none in two live jobs) and answered once.
func TestKillBatchRunAtEachStepThenResume(t *testing.T) {
	const n = 300
	r := newKillRig(t, `
providers:
  - {name: so, type: sim, sim: {api: openai, batch: {turnaround: 1500ms}}, models: [{name: mo}]}
  - {name: sa, type: sim, sim: {api: anthropic, batch: {turnaround: 1500ms}}, models: [{name: ma}]}
  - {name: sg, type: sim, sim: {api: gemini, batch: {turnaround: 1500ms}}, models: [{name: mg}]}
`, n)
	dir, addr, input := r.dir, r.addr, r.input
	// The runs learn batch turnarounds into a history under the test's directory, not the user's.
	env := append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
	for _, d := range []struct{ name, typ, base, model string }{
		{"so", "openai", "/sim/so/v1", "mo"}, {"sa", "anthropic", "/sim/sa", "ma"}, {"sg", "gemini", "/sim/sg/v1beta", "mg"},
	} {
		for _, at := range []string{"uploaded", "created", "poll", "download"} {
			if at == "uploaded" && d.typ != "openai" {
				continue
			}
			t.Run(d.typ+"/"+at, func(t *testing.T) {
				before := simServed(t, addr)[d.name+"/"+d.model]
				cfg := writeFile(t, dir, d.name+at+".yaml", fmt.Sprintf(`
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
				cmd := exec.Command(r.bin, args...)
				cmd.Env = env
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
				startThenKill(t, cmd, 20*time.Second, ready, at)
				cp, err := results.Scan(output, results.FormatDefault)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("killed at %s: %d lines in the output", at, cp.Lines)
				resume := exec.Command(r.bin, args...)
				resume.Env = env
				if out, err := resume.CombinedOutput(); err != nil {
					t.Fatalf("resume: %v\n%s", err, out)
				}
				checkOneAnswerEach(t, output, r.texts, "batch")
				after := simServed(t, addr)[d.name+"/"+d.model]
				lines, ok, dup := after.BatchLines-before.BatchLines, after.BatchOK-before.BatchOK, after.BatchDuplicateLive-before.BatchDuplicateLive
				if lines != n || ok != n || dup != 0 {
					t.Errorf("simulator: %d lines sent in batch jobs, %d answered, %d sent while live elsewhere; want %d, %d, 0", lines, ok, dup, n, n)
				}
			})
		}
	}
}
