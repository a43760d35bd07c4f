package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// The response cache tests never touch the user's ~/.cache: every run gets XDG_CACHE_HOME in a
// temporary directory through the Factory's Getenv (or the child's environment).

// cacheEnv returns a Getenv that sets XDG_CACHE_HOME only.
func cacheEnv(home string) func(string) string {
	return func(k string) string {
		if k == "XDG_CACHE_HOME" {
			return home
		}
		return ""
	}
}

// readResults parses a result file by id.
func readResults(t *testing.T, path string) map[string]results.Result {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]results.Result{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r results.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, dup := out[r.CustomID]; dup {
			t.Fatalf("%s: two lines for %s", path, r.CustomID)
		}
		out[r.CustomID] = r
	}
	return out
}

func simTotals(srv *sim.Server) (requests, ok int) {
	for _, st := range srv.Stats() {
		requests += st.Requests
		ok += st.OK
	}
	return
}

// TestCacheDemoTwice runs the demo (testdata/prompts.jsonl on the simulated providers) into one
// output and again into a second: the second sends nothing (the simulator's counters do not move)
// and every answer equals the first's, as ordinary ok lines marked cached with cost 0 and the
// original cost in cached_cost_usd. A third run under the default --cache on re-sends exactly the
// sampled prompts (temperature above 0, no seed).
func TestCacheDemoTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg, err := config.Load("../testdata/providers.sim.yaml")
		if err != nil {
			t.Fatal(err)
		}
		srv := sim.New(cfg, sim.Options{Now: time.Now, Seed: 7})
		var stderr bytes.Buffer
		f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &stderr},
			Getenv: cacheEnv(filepath.Join(dir, "cache")), Now: time.Now,
			Transport: func(*config.Provider) http.RoundTripper { return srv.Transport() }}
		run := func(out string, args ...string) {
			t.Helper()
			stderr.Reset()
			args = append([]string{"run", "../testdata/prompts.jsonl", "-c", "../testdata/providers.sim.yaml", "-o", filepath.Join(dir, out)}, args...)
			if code := Execute(context.Background(), f, args); code != ExitOK {
				t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
			}
		}
		run("first.jsonl", "--cache", "always", "--quiet")
		sent1, ok1 := simTotals(srv)
		run("second.jsonl", "--cache", "always")
		sent2, _ := simTotals(srv)
		if sent2 != sent1 {
			t.Errorf("the second run sent %d requests, want 0", sent2-sent1)
		}
		first, second := readResults(t, filepath.Join(dir, "first.jsonl")), readResults(t, filepath.Join(dir, "second.jsonl"))
		if len(first) != 237 || len(second) != len(first) || ok1 < 237 {
			t.Fatalf("%d and %d lines for 237 prompts (%d ok answers served)", len(first), len(second), ok1)
		}
		for id, a := range first {
			b := second[id]
			if b.Status != results.StatusOK || b.Content != a.Content || b.Provider != a.Provider || b.Model != a.Model ||
				b.FinishReason != a.FinishReason || *b.Usage != *a.Usage || b.RequestHash != a.RequestHash {
				t.Fatalf("%s: the cached answer differs:\nfirst  %+v\nsecond %+v", id, a, b)
			}
			if !b.Cached || b.Via != "cache" || b.CostUSD != 0 || b.CachedCostUSD != a.CostUSD || b.Attempts != 0 || b.StartedAt == "" {
				t.Fatalf("%s: not marked as a cache hit: %+v", id, b)
			}
		}
		if !strings.Contains(stderr.String(), "237 answered from the response cache at no cost") {
			t.Errorf("the summary does not count the hits:\n%s", stderr.String())
		}

		// --cache on: sampled prompts are neither looked up nor stored; everything else is a hit.
		sampled := 0
		data, _ := os.ReadFile("../testdata/prompts.jsonl")
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var l struct {
				Temperature *float64
				Seed        *int
				Body        struct {
					Temperature *float64
					Seed        *int
				}
			}
			json.Unmarshal([]byte(line), &l)
			if l.Body.Temperature != nil {
				l.Temperature, l.Seed = l.Body.Temperature, l.Body.Seed
			}
			if l.Temperature != nil && *l.Temperature > 0 && l.Seed == nil {
				sampled++
			}
		}
		run("third.jsonl", "--quiet")
		_, ok3 := simTotals(srv)
		third := readResults(t, filepath.Join(dir, "third.jsonl"))
		hits := 0
		for _, r := range third {
			if r.Cached {
				hits++
			}
		}
		t.Logf("demo: first run %d requests; second 0; third (--cache on) %d answers bought for %d sampled prompts, %d hits", sent1, ok3-ok1, sampled, hits)
		if sampled == 0 || ok3-ok1 != sampled || hits != 237-sampled {
			t.Errorf("--cache on bought %d answers and hit %d; want %d bought (the sampled prompts) and %d hits", ok3-ok1, hits, sampled, 237-sampled)
		}
	})
}

// TestCacheChangedParameterMisses: after a run, estimate counts every prompt as a cache hit at $0;
// changing one prompt's max_tokens and another's temperature makes exactly those two miss.
func TestCacheChangedParameterMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, rpmBoundConfig, 20, 40)
		f := s.factory(nil)
		f.Getenv = cacheEnv(filepath.Join(s.dir, "cache"))
		run := func(out string) {
			t.Helper()
			if code := Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", out, "--quiet"}); code != ExitOK {
				t.Fatalf("exit %d: %s", code, s.stderr.String())
			}
		}
		estimate := func() (hits int, cost float64) {
			t.Helper()
			s.stdout.Reset()
			if code := Execute(context.Background(), f, []string{"estimate", s.input, "-c", s.cfgPath, "--json"}); code != ExitOK {
				t.Fatalf("estimate: exit %d: %s", code, s.stderr.String())
			}
			var e struct {
				CacheHits int     `json:"cache_hits"`
				CostUSD   float64 `json:"cost_usd"`
			}
			if err := json.Unmarshal(s.stdout.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			return e.CacheHits, e.CostUSD
		}
		if hits, cost := estimate(); hits != 0 || cost == 0 {
			t.Fatalf("estimate before any run: %d hits, $%v", hits, cost)
		}
		run(filepath.Join(s.dir, "a.jsonl"))
		if hits, cost := estimate(); hits != 20 || cost != 0 {
			t.Errorf("estimate after the run: %d hits, $%v; want 20 hits at $0", hits, cost)
		}
		_, ok1 := simTotals(s.srv)

		data, _ := os.ReadFile(s.input)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		lines[3] = strings.Replace(lines[3], `"max_tokens":50`, `"max_tokens":51`, 1)
		lines[7] = strings.Replace(lines[7], `"max_tokens":50`, `"max_tokens":50,"temperature":0`, 1)
		if err := os.WriteFile(s.input, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if hits, _ := estimate(); hits != 18 {
			t.Errorf("estimate after the change: %d hits, want 18", hits)
		}
		run(filepath.Join(s.dir, "b.jsonl"))
		_, ok2 := simTotals(s.srv)
		got := readResults(t, filepath.Join(s.dir, "b.jsonl"))
		if ok2-ok1 != 2 || got["p00003"].Cached || got["p00007"].Cached || !got["p00004"].Cached || len(got) != 20 {
			t.Errorf("after changing two prompts: %d sent; p00003 cached %v, p00007 cached %v, p00004 cached %v",
				ok2-ok1, got["p00003"].Cached, got["p00007"].Cached, got["p00004"].Cached)
		}
	})
}

// TestCacheCorrupt: a cache file that is not a database, and one whose pages were overwritten, are
// each reported once and bypassed: every prompt is sent and answered as if there were no cache.
func TestCacheCorrupt(t *testing.T) {
	for _, damage := range []string{"not a database", "pages overwritten"} {
		t.Run(damage, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRun(t, rpmBoundConfig, 20, 40)
				f := s.factory(nil)
				home := filepath.Join(s.dir, "cache")
				f.Getenv = cacheEnv(home)
				db := filepath.Join(home, "llmbatch", "responses.db")
				run := func(out string) {
					t.Helper()
					s.stderr.Reset()
					if code := Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", out, "--quiet"}); code != ExitOK {
						t.Fatalf("exit %d: %s", code, s.stderr.String())
					}
				}
				if damage == "not a database" {
					os.MkdirAll(filepath.Dir(db), 0o755)
					os.WriteFile(db, bytes.Repeat([]byte("garbage "), 1000), 0o644)
				} else {
					run(filepath.Join(s.dir, "fill.jsonl"))
					b, err := os.ReadFile(db)
					if err != nil || len(b) <= 4096 {
						t.Fatalf("cache file: %d bytes, %v", len(b), err)
					}
					for i := 4096; i < len(b); i++ { // every page after the header page
						b[i] = byte(i * 7)
					}
					os.WriteFile(db, b, 0o644)
				}
				_, ok0 := simTotals(s.srv)
				run(filepath.Join(s.dir, "out.jsonl"))
				_, ok1 := simTotals(s.srv)
				got := readResults(t, filepath.Join(s.dir, "out.jsonl"))
				cached := 0
				for _, r := range got {
					if r.Cached {
						cached++
					}
				}
				if ok1-ok0 != 20 || len(got) != 20 || cached != 0 {
					t.Errorf("%d answers bought, %d lines, %d from the cache; want 20, 20, 0", ok1-ok0, len(got), cached)
				}
				if n := strings.Count(s.stderr.String(), "response cache is unusable"); n != 1 {
					t.Errorf("the damage was reported %d times, want once:\n%s", n, s.stderr.String())
				}
				t.Logf("stderr: %s", s.stderr.String())
			})
		})
	}
}

// TestCacheTwoProcesses runs two llmbatch processes at once on the same cache (and input, into two
// outputs): both finish cleanly, the cache then holds every answer once, and a third run sends
// nothing.
func TestCacheTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "llmbatch")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "providers.yaml")
	os.WriteFile(cfgPath, []byte(`
defaults: {concurrency: 16, timeout: 10s}
providers:
  - name: s1
    type: sim
    models: [{name: m-small, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4}]
    sim: {latency: 40ms, jitter: 0.5}
`), 0o644)
	const n = 400
	prompts, err := exec.Command(bin, "sim", "prompts", fmt.Sprint(n)).Output()
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "prompts.jsonl")
	os.WriteFile(input, prompts, 0o644)
	home := filepath.Join(dir, "cache")
	env := append(os.Environ(), "XDG_CACHE_HOME="+home, "LLMBATCH_CACHE=on") // TestMain turns it off for children
	var wg sync.WaitGroup
	outs := []string{filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")}
	errs := make([]string, 2)
	for i, out := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, "run", input, "-c", cfgPath, "-o", out, "--progress", "never")
			cmd.Env = env
			b, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Sprintf("%v: %s", err, b)
			} else if bytes.Contains(b, []byte("cache")) && !bytes.Contains(b, []byte("answered from the response cache")) {
				errs[i] = fmt.Sprintf("a cache problem: %s", b)
			}
			t.Logf("process %d: %s", i, lastLines(string(b), 2))
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("process %d: %s", i, e)
		}
	}
	for _, out := range outs {
		if got := readResults(t, out); len(got) != n {
			t.Errorf("%s: %d lines, want %d", out, len(got), n)
		}
	}
	cmd := exec.Command(bin, "cache", "stats", "--json")
	cmd.Env = env
	b, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Entries int     `json:"entries"`
		CostUSD float64 `json:"cost_usd"`
	}
	json.Unmarshal(b, &st)
	if st.Entries != n || st.CostUSD <= 0 {
		t.Errorf("cache stats after both runs: %s", b)
	}

	// A third run, in process against a simulator that counts: everything is a hit.
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := sim.New(cfg, sim.Options{Now: time.Now, Seed: 1})
	var stderr bytes.Buffer
	f := &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &stderr},
		Getenv: cacheEnv(home), Now: time.Now, Transport: func(*config.Provider) http.RoundTripper { return srv.Transport() }}
	third := filepath.Join(dir, "c.jsonl")
	if code := Execute(context.Background(), f, []string{"run", input, "-c", cfgPath, "-o", third, "--quiet"}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if sent, _ := simTotals(srv); sent != 0 {
		t.Errorf("the third run sent %d requests, want 0", sent)
	}
	sum := 0.0
	for _, r := range readResults(t, third) {
		sum += r.CachedCostUSD
	}
	if math.Abs(sum-st.CostUSD) > 1e-9 {
		t.Errorf("the hits' cached_cost_usd add up to %v, the cache holds %v", sum, st.CostUSD)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}
