package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// simRun drives `llmbatch run` end to end against the in-process simulator: a real config file, a
// real prompt file, the real command (flags, preflight, adapters over HTTP, engine, writer) and a
// real output file that the test parses back. Use it inside synctest.Test so that rate-limit windows
// pass in virtual time.
type simRun struct {
	t       testing.TB
	dir     string
	cfgPath string
	cfg     *config.Config
	srv     *sim.Server
	input   string
	output  string
	prompts map[string]string // id -> the prompt's text (the simulator's answer digest is over it)
	stderr  bytes.Buffer
	stdout  bytes.Buffer
}

// newSimRun writes the config and n prompts of about promptBytes bytes each with max_tokens 50.
func newSimRun(t testing.TB, yaml string, n, promptBytes int) *simRun {
	t.Helper()
	s := &simRun{t: t, dir: t.TempDir(), prompts: map[string]string{}}
	s.cfgPath = filepath.Join(s.dir, "providers.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s.cfg = cfg
	s.srv = sim.New(cfg, sim.Options{Now: time.Now, Seed: 7})
	s.input = filepath.Join(s.dir, "prompts.jsonl")
	s.output = filepath.Join(s.dir, "prompts.results.jsonl")
	var in bytes.Buffer
	for i := range n {
		id := fmt.Sprintf("p%05d", i)
		text := fmt.Sprintf("Label item %d as positive or negative: %s", i, strings.Repeat("lorem ipsum ", max(promptBytes/12, 1)))
		s.prompts[id] = text
		line, _ := json.Marshal(map[string]any{"id": id, "prompt": text, "max_tokens": 50})
		in.Write(append(line, '\n'))
	}
	if err := os.WriteFile(s.input, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// factory returns a Factory whose providers all talk to the simulator.
func (s *simRun) factory(sigs <-chan os.Signal) *Factory {
	return &Factory{
		IO:        &IOStreams{In: strings.NewReader(""), Out: &s.stdout, ErrOut: &s.stderr},
		Getenv:    func(string) string { return "" },
		Now:       time.Now,
		Signals:   sigs,
		Transport: func(*config.Provider) http.RoundTripper { return s.srv.Transport() },
	}
}

// run executes `llmbatch run INPUT -c CONFIG -o OUTPUT args...` and returns the exit code and the
// virtual wall time it took.
func (s *simRun) run(args ...string) (int, time.Duration) {
	s.t.Helper()
	s.stderr.Reset()
	start := time.Now()
	code := Execute(context.Background(), s.factory(nil), append([]string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet"}, args...))
	return code, time.Since(start)
}

// runOK runs the batch like run, fails the test unless it exits 0 with exactly one ok line per
// prompt, and returns the lines by id and the virtual wall time.
func (s *simRun) runOK(args ...string) (map[string]results.Result, time.Duration) {
	s.t.Helper()
	code, elapsed := s.run(args...)
	if code != ExitOK {
		s.t.Fatalf("exit %d: %s", code, s.stderr.String())
	}
	return s.allOK(), elapsed
}

// lines parses the output file. It fails the test on a line that is not a result or an answer that
// does not belong to its prompt (the simulator's digest of the prompt text leads every answer).
func (s *simRun) lines() []results.Result {
	s.t.Helper()
	data, err := os.ReadFile(s.output)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []results.Result
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r results.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			s.t.Fatalf("bad result line %q: %v", sc.Text(), err)
		}
		text, ok := s.prompts[r.CustomID]
		if !ok {
			s.t.Fatalf("result for unknown id %q", r.CustomID)
		}
		if want := sim.Digest([]string{text}); r.Status == results.StatusOK && !strings.HasPrefix(r.Content, want) {
			s.t.Fatalf("%s: answer %.40q does not belong to its prompt (want %s)", r.CustomID, r.Content, want)
		}
		out = append(out, r)
	}
	return out
}

// byID checks that every prompt has exactly one result line and returns them by id.
func (s *simRun) byID() map[string]results.Result {
	s.t.Helper()
	got := map[string]results.Result{}
	for _, r := range s.lines() {
		if _, dup := got[r.CustomID]; dup {
			s.t.Fatalf("two result lines for %s", r.CustomID)
		}
		got[r.CustomID] = r
	}
	if len(got) != len(s.prompts) {
		s.t.Fatalf("%d result lines for %d prompts; stderr:\n%s", len(got), len(s.prompts), s.stderr.String())
	}
	return got
}

// allOK checks that every prompt has exactly one ok line.
func (s *simRun) allOK() map[string]results.Result {
	s.t.Helper()
	got := s.byID()
	for id, r := range got {
		if r.Status != results.StatusOK {
			s.t.Fatalf("%s: %s %+v", id, r.Status, r.Error)
		}
	}
	return got
}

// stats returns the simulator's counters for provider/model.
func (s *simRun) stats(lane string) sim.ModelStats {
	st, ok := s.srv.Stats()[lane]
	if !ok {
		s.t.Fatalf("no simulator stats for %s", lane)
	}
	return st
}

// share is the achieved throughput as a fraction of a ceiling in requests per minute.
func share(n int, elapsed time.Duration, perMinute float64) float64 {
	return float64(n) / elapsed.Minutes() / perMinute
}
