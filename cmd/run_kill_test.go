package cmd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	const concurrency, n = 16, 500
	r := newKillRig(t, `
providers:
  - name: s1
    type: sim
    models: [{name: m-small, category: small}]
    sim: {latency: 60ms, jitter: 0.5}
`, n)
	dir, bin, addr, input := r.dir, r.bin, r.addr, r.input
	cfg := writeFile(t, dir, "providers.yaml", fmt.Sprintf(`
defaults: {concurrency: %d, timeout: 10s}
providers:
  - name: s1
    type: openai
    base_url: http://%s/sim/s1/v1
    api_key_env: LLMBATCH_KILL_TEST_KEY
    models: [{name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}]
`, concurrency, addr))
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
		stderrs.Write(startThenKill(t, cmd, 10*time.Second, func() bool { return countLines(output) >= at }, fmt.Sprintf("%d%% (%d lines)", pct, at)))
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

	data := checkOneAnswerEach(t, output, r.texts, "")
	if strings.Contains(string(data), apiKey) || strings.Contains(stderrs.String(), apiKey) {
		t.Error("the API key appears in the output or the logs")
	}
	served := simServed(t, addr)["s1/m-small"].OK
	t.Logf("%d prompts, %d answers served, %d answered twice", n, served, served-n)
	if served-n != wasted {
		t.Errorf("%d prompts answered twice, but %d answers were lost at the kills", served-n, wasted)
	}
}

// pollUntil checks cond every 2 ms until it holds (true) or timeout passes (false). It is for
// waiting on another process, which synctest cannot do; the short tick matters for kill points that
// last only milliseconds (a batch download).
func pollUntil(timeout time.Duration, cond func() bool) bool {
	tick := time.NewTicker(2 * time.Millisecond)
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
