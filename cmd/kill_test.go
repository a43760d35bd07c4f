package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// TestKillNineAndResume runs the real binary against `llmbatch sim serve` in another process, kills
// the run with SIGKILL at several points, resumes each time, and checks that every prompt ends with
// exactly one ok line whose answer is its own, and that no more prompts were answered twice than
// were in flight at the kills.
func TestKillNineAndResume(t *testing.T) {
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
	serverCfg := write("sim.yaml", `
providers:
  - name: s1
    type: sim
    models: [{name: m-small, category: small}]
    sim: {latency: 150ms, jitter: 0.3}
`)
	addr := startSimServer(t, bin, serverCfg)
	const concurrency = 16
	clientCfg := write("providers.yaml", fmt.Sprintf(`
defaults: {concurrency: %d, timeout: 10s}
providers:
  - name: s1
    type: openai
    base_url: http://%s/sim/s1/v1
    models: [{name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}]
`, concurrency, addr))

	prompts, err := exec.Command(bin, "sim", "prompts", "600").Output()
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
	args := []string{"run", input, "-c", clientCfg, "--quiet"}

	kills := 0
	for _, at := range []int{60, 240, 420} { // kill when this many lines are written
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for countLines(output) < at && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polling another process's file: a real wait
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
		t.Logf("killed at %d lines", countLines(output))
	}
	final := exec.Command(bin, args...)
	if out, err := final.CombinedOutput(); err != nil {
		t.Fatalf("final resume: %v\n%s", err, out)
	}

	seen := map[string]bool{}
	data, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r results.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		if seen[r.CustomID] {
			t.Fatalf("two lines for %s", r.CustomID)
		}
		seen[r.CustomID] = true
		if r.Status != results.StatusOK || !strings.HasPrefix(r.Content, sim.Digest([]string{texts[r.CustomID]})) {
			t.Fatalf("%s: %s %.40q is not the answer to its prompt", r.CustomID, r.Status, r.Content)
		}
	}
	if len(seen) != len(texts) {
		t.Fatalf("%d ids in the output, %d prompts", len(seen), len(texts))
	}
	answered := simServed(t, addr)["s1/m-small"].OK
	twice := answered - len(texts)
	t.Logf("%d kills, %d prompts, %d answers served, %d answered twice", kills, len(texts), answered, twice)
	if twice < 0 || twice > kills*concurrency {
		t.Errorf("%d prompts answered twice, want at most %d (the requests in flight at %d kills)", twice, kills*concurrency, kills)
	}
}

// startSimServer runs `llmbatch sim serve` on a free loopback port and returns its address.
func startSimServer(t *testing.T, bin, cfg string) string {
	t.Helper()
	cmd := exec.Command(bin, "sim", "serve", "--addr", "127.0.0.1:0", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "sim: listening on http://"); ok {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return rest
		}
	}
	t.Fatal("sim serve did not report its address")
	return ""
}

// simServed fetches the simulator's counters from another process.
func simServed(t *testing.T, addr string) map[string]sim.ModelStats {
	t.Helper()
	resp, err := http.Get("http://" + addr + sim.StatsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]sim.ModelStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// countLines counts the complete lines of a file (0 when it does not exist yet).
func countLines(path string) int {
	data, _ := os.ReadFile(path)
	return bytes.Count(data, []byte{'\n'})
}
