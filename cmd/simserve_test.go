package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/sim"
)

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
