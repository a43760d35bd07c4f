package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
)

// Prices that make float sums noisy (0.15 and 0.6 per million have no exact binary form).
const noisyPricesConfig = `
defaults: {concurrency: 16, timeout: 30s}
providers:
  - name: s1
    type: sim
    models:
      - {name: m-small, category: small, input_per_mtok: 0.15, output_per_mtok: 0.6}
      - {name: m-tiny, category: tiny, input_per_mtok: 0.075, output_per_mtok: 0.3}
    sim: {latency: 50ms, jitter: 0.2}
`

// noisyNumber matches a JSON number with more than ten decimals: float noise such as
// 0.000009450000000000001 or 5.1579479500000005 (money is rounded to 1e-10 USD).
var noisyNumber = regexp.MustCompile(`[:\[,]\s*-?\d+\.\d{11,}`)

// Every JSON output that carries money (result lines, estimate, select, models) is free of float
// noise, and the costs are really there.
func TestJSONOutputsHaveNoFloatNoise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, noisyPricesConfig, 300, 37)
		s.runOK()
		data, err := os.ReadFile(s.output)
		if err != nil {
			t.Fatal(err)
		}
		outputs := map[string]string{"result lines": string(data)}
		for _, args := range [][]string{
			// A fresh job estimated from the run's results (the run's own job has nothing left).
			{"estimate", s.input, "-c", s.cfgPath, "--json", "-o", filepath.Join(s.dir, "fresh.jsonl"), "--calibrate", s.output},
			{"select", s.input, "-c", s.cfgPath, "--json"},
			{"models", "-c", s.cfgPath, "--json"},
		} {
			s.stdout.Reset()
			if code := Execute(context.Background(), s.factory(nil), args); code != ExitOK {
				t.Fatalf("%v: exit %d: %s", args, code, s.stderr.String())
			}
			outputs[args[0]] = s.stdout.String()
		}
		for name, out := range outputs {
			if m := noisyNumber.FindString(out); m != "" {
				t.Errorf("%s carry float noise: %q", name, m)
			}
			if name != "models" && !regexp.MustCompile(`"cost_usd":\s*0\.\d*[1-9]`).MatchString(out) {
				t.Errorf("%s carry no small cost_usd to check:\n%.400s", name, out)
			}
		}
	})
}

func TestRunEmptyInputIsNotAnError(t *testing.T) {
	s := newSimRun(t, noisyPricesConfig, 0, 10)
	if err := os.WriteFile(s.input, []byte("\n\n"), 0o644); err != nil { // blank lines are skipped
		t.Fatal(err)
	}
	code, _ := s.run()
	if code != ExitOK {
		t.Fatalf("exit %d, want 0: %s", code, s.stderr.String())
	}
	if want := "no prompts in " + s.input + "\n"; s.stderr.String() != want {
		t.Errorf("stderr %q, want %q", s.stderr.String(), want)
	}
	if _, err := os.Stat(s.output); !os.IsNotExist(err) {
		t.Errorf("an output was created for an empty input (stat: %v)", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(s.output)); len(entries) != 2 { // the config and the input
		t.Errorf("the directory holds %d files, want only the config and the input", len(entries))
	}
}

// A resumed run's bar starts at the prompts already done, before any new one finishes; the run
// ends with one summary and one wall time.
func TestResumedRunProgressStartsAtTheDoneCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, noisyPricesConfig, 20, 20)
		s.runOK()
		data, err := os.ReadFile(s.output)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		if err := os.WriteFile(s.output, bytes.Join(lines[:8], nil), 0o644); err != nil { // 8 of 20 kept
			t.Fatal(err)
		}
		s.stderr.Reset()
		code := Execute(context.Background(), s.factory(nil),
			[]string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--progress", "always"})
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		out := s.stderr.String()
		first := regexp.MustCompile(`\((\d+)/20\)`).FindStringSubmatch(out)
		if first == nil || first[1] != "8" {
			t.Fatalf("the first bar drawn shows %v, want (8/20):\n%q", first, out)
		}
		if !strings.Contains(out, "(20/20)") {
			t.Errorf("the bar never reached 20/20:\n%q", out)
		}
		if n := strings.Count(out, "wall time"); n != 1 {
			t.Errorf("%d wall times printed, want one:\n%s", n, out)
		}
		if !strings.Contains(out, "20 prompts: 12 ok, 0 failed, 8 skipped (already done), 0 remaining") {
			t.Errorf("final line missing:\n%s", out)
		}
	})
}
