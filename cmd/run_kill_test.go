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

// TestKillAtFractionsThenResume builds the binary, serves the simulator from another process, runs
// `llmbatch run` as a child and SIGKILLs it once the output holds 10%, 40% and 70% of the lines,
// resuming with the same command each time until it exits 0. It proves DESIGN §3's promise that
// kill -9 loses at most the work in flight: at each kill, the answers the simulator served but the
// output lacks are no more than the concurrency, every prompt ends with exactly one ok line, and
// every answer belongs to its prompt.
func TestKillAtFractionsThenResume(t *testing.T) {
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
  - name: s1
    type: sim
    models: [{name: m-small, category: small}]
    sim: {latency: 60ms, jitter: 0.5}
`))
	const concurrency, n = 16, 500
	cfg := write("providers.yaml", fmt.Sprintf(`
defaults: {concurrency: %d, timeout: 10s}
providers:
  - name: s1
    type: openai
    base_url: http://%s/sim/s1/v1
    api_key_env: LLMBATCH_KILL_TEST_KEY
    models: [{name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}]
`, concurrency, addr))
	prompts, err := exec.Command(bin, "sim", "prompts", fmt.Sprint(n)).Output()
	if err != nil {
		t.Fatal(err)
	}
	input := write("prompts.jsonl", string(prompts))
	texts := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(prompts)), "\n") {
		var p struct{ ID, Prompt string }
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatal(err)
		}
		texts[p.ID] = p.Prompt
	}
	output := filepath.Join(dir, "prompts.results.jsonl")
	args := []string{"run", input, "-c", cfg, "--quiet"}
	const apiKey = "sk-kill-test-0123456789abcdef"
	env := append(os.Environ(), "LLMBATCH_KILL_TEST_KEY="+apiKey, "XDG_CACHE_HOME="+filepath.Join(dir, "cache")) // never the user's cache
	var stderrs bytes.Buffer                                                                                     // every run's stderr: the key must never appear

	wasted := 0 // answers served but not in the output, so far
	for _, pct := range []int{10, 40, 70} {
		at := n * pct / 100
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if !pollUntil(10*time.Second, func() bool { return countLines(output) >= at }) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("the output never reached %d lines; stderr:\n%s", at, stderr.String())
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := <-exited; err == nil {
			t.Fatalf("the run finished before the kill at %d%%", pct)
		}
		stderrs.Write(stderr.Bytes())
		// The server finishes (or cancels) what the dead client had in flight; then compare.
		var st sim.ModelStats
		if !pollUntil(5*time.Second, func() bool {
			st = simServed(t, addr)["s1/m-small"]
			return st.OK+st.Canceled+st.Faults+st.RateLimited+st.Invalid == st.Requests
		}) {
			t.Fatalf("the simulator still has requests in flight: %+v", st)
		}
		cp, err := results.Scan(output, results.FormatDefault) // what the resume will see (torn tail repaired)
		if err != nil {
			t.Fatalf("after the kill at %d%%: %v", pct, err)
		}
		lost := st.OK - cp.DoneIDs - wasted
		t.Logf("kill at %d%%: %d lines (torn tail of %d bytes), %d served, %d answers lost", pct, cp.Lines, cp.TornBytes, st.OK, lost)
		if lost < 0 || lost > concurrency {
			t.Errorf("kill at %d%%: %d served answers are missing from the output, want at most the %d in flight", pct, lost, concurrency)
		}
		if cp.Lines != cp.DoneIDs || cp.ErrorLines != 0 {
			t.Errorf("kill at %d%%: %+v: want one ok line per id", pct, cp)
		}
		wasted += max(lost, 0)
	}
	// Resume with the same command until it succeeds (it should at once).
	for i := 0; ; i++ {
		resume := exec.Command(bin, append(args, "-v")...)
		resume.Env = env
		out, err := resume.CombinedOutput()
		stderrs.Write(out)
		if err == nil {
			break
		}
		if i == 2 {
			t.Fatalf("resume: %v\n%s", err, out)
		}
	}

	data, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
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
		text, ok := texts[r.CustomID]
		if !ok || r.Status != results.StatusOK || !strings.HasPrefix(r.Content, sim.Digest([]string{text})) {
			t.Fatalf("%s: %s %.40q is not the answer to its prompt", r.CustomID, r.Status, r.Content)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d ids in the output, %d prompts", len(seen), n)
	}
	if strings.Contains(string(data), apiKey) || strings.Contains(stderrs.String(), apiKey) {
		t.Error("the API key appears in the output or the logs")
	}
	served := simServed(t, addr)["s1/m-small"].OK
	t.Logf("%d prompts, %d answers served, %d answered twice", n, served, served-n)
	if served-n != wasted {
		t.Errorf("%d prompts answered twice, but %d answers were lost at the kills", served-n, wasted)
	}
}

// pollUntil checks cond every 10 ms until it holds (true) or timeout passes (false). It is for
// waiting on another process, which synctest cannot do.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
	return true
}
