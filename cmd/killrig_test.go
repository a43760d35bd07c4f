package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// killRig is the set-up the kill-and-resume tests share: the built binary, the simulator served
// from another process, and n prompts written as the run's input.
type killRig struct {
	dir, bin, addr, input string
	texts                 map[string]string // prompt id → prompt text
}

// newKillRig builds the binary, serves simConfig with `llmbatch sim serve` and writes n prompts
// from `llmbatch sim prompts` to dir/prompts.jsonl. It skips under -short.
func newKillRig(t *testing.T, simConfig string, n int) *killRig {
	t.Helper()
	bin := buildBinary(t)
	r := &killRig{dir: t.TempDir(), bin: bin, texts: map[string]string{}}
	r.addr = startSimServer(t, bin, writeFile(t, r.dir, "sim.yaml", simConfig))
	prompts, err := exec.Command(bin, "sim", "prompts", fmt.Sprint(n)).Output()
	if err != nil {
		t.Fatal(err)
	}
	r.input = writeFile(t, r.dir, "prompts.jsonl", string(prompts))
	for _, line := range strings.Split(strings.TrimSpace(string(prompts)), "\n") {
		var p struct{ ID, Prompt string }
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatal(err)
		}
		r.texts[p.ID] = p.Prompt
	}
	return r
}

// startThenKill starts cmd, waits up to timeout for ready and then SIGKILLs it, returning what it
// wrote to stderr. It fails the test when ready never holds or the run ends before the kill; what
// names the kill point in those failures.
func startThenKill(t *testing.T, cmd *exec.Cmd, timeout time.Duration, ready func() bool, what string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if !pollUntil(timeout, ready) {
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("never reached %s; stderr:\n%s", what, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatalf("the run finished before the kill at %s", what)
	}
	return stderr.Bytes()
}

// checkOneAnswerEach fails the test unless output holds exactly one line per prompt of texts, each
// ok, sent via via (any route when via is empty) and answering its own prompt. It returns the
// output's bytes.
func checkOneAnswerEach(t *testing.T, output string, texts map[string]string, via string) []byte {
	t.Helper()
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
		if !ok || r.Status != results.StatusOK || (via != "" && r.Via != via) || !strings.HasPrefix(r.Content, sim.Digest([]string{text})) {
			t.Fatalf("%s: %s via %q %.40q is not the answer to its prompt", r.CustomID, r.Status, r.Via, r.Content)
		}
	}
	if len(seen) != len(texts) {
		t.Fatalf("%d ids in the output, %d prompts", len(seen), len(texts))
	}
	return data
}
