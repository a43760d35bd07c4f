package cmd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The hostile-input tests of issue 17 (rows 10-12), through the commands a user runs.

func TestInvalidUTF8IsAnInputError(t *testing.T) {
	in := filepath.Join(t.TempDir(), "latin1.jsonl")
	data := `{"id":"a","prompt":"fine"}` + "\n" + `{"id":"b","prompt":"caf` + "\xe9 au lait" + `"}` + "\n"
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"estimate", "select", "run"} {
		io, out, errOut := testStreams()
		f := &Factory{IO: io, Getenv: fixtureEnv(), Now: time.Now}
		args := []string{cmd, in, "-c", fixtureConfig}
		if cmd == "run" {
			args = append(args, "-o", in+".out")
		}
		code := Execute(context.Background(), f, args)
		msg := errOut.String()
		if code != ExitUsage || !strings.Contains(msg, "latin1.jsonl:2: prompt: invalid UTF-8 (byte 0xe9 at offset 23") {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming latin1.jsonl:2 and the field", cmd, code, msg)
		}
		if out.Len() != 0 {
			t.Errorf("%s: stdout %q", cmd, out)
		}
	}
	if _, err := os.Stat(in + ".out"); err == nil {
		t.Error("run created an output for an input it refused")
	}
}

// TestLongPromptIsServedByAModelThatFits is issue 17 row 12: a 300 KB prompt without a category
// hint (the analyser calls it large) is served by the one configured model whose context window
// (1e9 tokens) holds it, though its category is small, in select and in run.
func TestLongPromptIsServedByAModelThatFits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cfg = `
defaults: {concurrency: 4, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-long, category: small, context_window: 1000000000, input_per_mtok: 0.1, output_per_mtok: 0.4}
      - {name: m-large, category: large, context_window: 32000, input_per_mtok: 2, output_per_mtok: 8}
`
		s := newSimRun(t, cfg, 1, 300_000)
		if code := s.exec(nil, "select", s.input, "-c", s.cfgPath, "--json", "--explain"); code != ExitOK {
			t.Fatalf("select: exit %d: %s", code, s.stderr.String())
		}
		var line struct {
			Category, Model, Why string
			InputTokens          int `json:"input_tokens"`
		}
		if err := json.Unmarshal(s.stdout.Bytes(), &line); err != nil {
			t.Fatalf("%v: %s", err, s.stdout.String())
		}
		if line.Category != "large" || line.Model != "m-long" || line.InputTokens < 40_000 {
			t.Errorf("select: %+v; want the large prompt on m-long", line)
		}
		if !strings.Contains(s.stdout.String(), "the nearest category whose models fit it") {
			t.Errorf("select --explain does not say why: %s", s.stdout.String())
		}
		got, _ := s.runOK()
		for _, r := range got {
			if r.Model != "m-long" {
				t.Errorf("run: served by %s", r.Model)
			}
		}
	})
}

// TestHugeLineWithoutSpaces is issue 17 row 11 through the commands: a prompt without a space
// beyond both bounds of pkg/tokens (9 MiB here; the 50 MB case and its memory are measured in
// pkg/tokens, where the race detector costs less) is counted as an estimate (exact_tokens false)
// rather than by exact BPE, and an interrupt stops select with exit 130.
func TestHugeLineWithoutSpaces(t *testing.T) {
	if testing.Short() {
		t.Skip("a 50 MB input")
	}
	in := filepath.Join(t.TempDir(), "huge.jsonl")
	data := `{"id":"huge","prompt":"` + strings.Repeat("a", 9<<20) + `"}` + "\n" + `{"id":"small","prompt":"hello there"}` + "\n"
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	data = ""
	io, out, errOut := testStreams()
	f := &Factory{IO: io, Getenv: fixtureEnv(), Now: time.Now}
	code := Execute(context.Background(), f, []string{"select", in, "-c", fixtureConfig, "--json"})
	if code != ExitUsage || !strings.Contains(errOut.String(), "huge.jsonl:1: no lane can serve it: 4× context too small (needs 1180") {
		t.Errorf("exit %d, stderr %q; want 2: the huge prompt fits no model", code, errOut)
	}
	var huge struct {
		InputTokens int  `json:"input_tokens"`
		Exact       bool `json:"exact_tokens"`
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if err := json.Unmarshal([]byte(first), &huge); err != nil {
		t.Fatalf("%v: %.200s", err, first)
	}
	if huge.Exact {
		t.Errorf("the 9 MiB prompt is marked exact: %.200s", first)
	}

	sigs := make(chan os.Signal, 1)
	io, _, errOut = testStreams()
	f = &Factory{IO: io, Getenv: fixtureEnv(), Now: time.Now, Signals: sigs}
	sigs <- os.Interrupt
	if code := Execute(context.Background(), f, []string{"select", in, "-c", fixtureConfig, "--json"}); code != ExitInterrupted {
		t.Errorf("interrupted select: exit %d, want 130; stderr %q", code, errOut)
	}
}
