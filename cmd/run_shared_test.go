package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/shared"
	"github.com/llmbatch/llmbatch/pkg/shared/redistest"
)

// sharedRig is one machine running several `llmbatch run` processes against one `sim serve` (one
// simulated API key) and one real redis-server.
type sharedRig struct {
	t     *testing.T
	dir   string
	bin   string
	addr  string // sim serve
	redis *redistest.Server
	env   []string
}

const sharedTestKey = "sk-shared-test-0123456789abcdef"

func newSharedRig(t *testing.T, simYAML string) *sharedRig {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary, redis-server and sim serve")
	}
	r := &sharedRig{t: t, dir: t.TempDir(), bin: buildBinary(t)}
	r.addr = startSimServer(t, r.bin, r.write("sim.yaml", simYAML))
	r.redis = redistest.Start(t)
	r.env = append(os.Environ(), "LLMBATCH_SHARED_TEST_KEY="+sharedTestKey)
	return r
}

// write writes content to the rig's directory as name and returns the path.
func (r *sharedRig) write(name, content string) string {
	return writeFile(r.t, r.dir, name, content)
}

// prompts writes n synthetic prompts and returns the file.
func (r *sharedRig) prompts(n int) string {
	out, err := exec.Command(r.bin, "sim", "prompts", fmt.Sprint(n)).Output()
	if err != nil {
		r.t.Fatal(err)
	}
	return r.write("prompts.jsonl", string(out))
}

type procResult struct {
	code   int
	stderr string
	output string
}

// runShards runs `llmbatch run` for shards 1/n … n/n at once, each with its own output, plus
// extra arguments, and returns when all have exited. during, when set, runs meanwhile.
func (r *sharedRig) runShards(n int, input, cfg string, extra []string, during func()) []procResult {
	var wg sync.WaitGroup
	res := make([]procResult, n)
	for i := range n {
		res[i].output = filepath.Join(r.dir, fmt.Sprintf("out-%d.jsonl", i+1))
		args := append([]string{"run", input, "-c", cfg, "-o", res[i].output, "--fresh", "--progress", "never",
			"--shared", r.redis.URL(), "--shard", fmt.Sprintf("%d/%d", i+1, n)}, extra...)
		cmd := exec.Command(r.bin, args...)
		cmd.Env = r.env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			r.t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				res[i].code = ee.ExitCode()
			} else if err != nil {
				res[i].code = -1
			}
			res[i].stderr = stderr.String()
		}()
	}
	if during != nil {
		during()
	}
	wg.Wait()
	return res
}

// okLines reads the outputs and returns, per id, how many ok lines it has, and the total cost.
func okLines(t *testing.T, res []procResult) (map[string]int, float64) {
	t.Helper()
	ok := map[string]int{}
	cost := 0.0
	for _, p := range res {
		data, err := os.ReadFile(p.output)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if line == "" {
				continue
			}
			var r results.Result
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: bad line %q: %v", p.output, line, err)
			}
			if r.Status == results.StatusOK {
				ok[r.CustomID]++
			}
			cost += r.CostUSD
		}
	}
	return ok, cost
}

// oneOKLineEach fails the test unless the shards' outputs hold exactly one ok line for each of n
// prompts.
func oneOKLineEach(t *testing.T, res []procResult, n int) {
	t.Helper()
	ok, _ := okLines(t, res)
	if len(ok) != n {
		t.Fatalf("%d prompts have an ok line, want %d", len(ok), n)
	}
	for id, k := range ok {
		if k != 1 {
			t.Fatalf("%s has %d ok lines", id, k)
		}
	}
}

// watchSim polls the simulator's counters until stop is closed; it returns when the first request
// arrived and when the ok answers reached n, so the throughput leaves out the processes' start-up.
func watchSim(t *testing.T, addr, model string, n int, stop <-chan struct{}) (first, last time.Time) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for stopped := false; !stopped; {
		select {
		case <-stop:
			stopped = true // one last look: the processes may have ended between two ticks
		case <-tick.C:
		}
		st := simServed(t, addr)[model]
		now := time.Now()
		if first.IsZero() && st.Requests > 0 {
			first = now
		}
		if last.IsZero() && st.OK >= n {
			last = now
		}
	}
	return first, last
}

// sharedSim enforces 1,200 RPM; ceilingSim 300 RPM, so that a test of 450 prompts lasts longer
// than the 60 s window and the window binds (in a shorter run a provider accepts a whole minute's
// worth at once, and any limiter looks fast).
const (
	sharedSim = `
providers:
  - name: s1
    type: sim
    models: [{name: m1, category: small, rpm: 1200, tpm: 10000000}]
    sim: {latency: 80ms, jitter: 0.25}
`
	ceilingSim = `
providers:
  - name: s1
    type: sim
    models: [{name: m1, category: small, rpm: 300, tpm: 10000000}]
    sim: {latency: 80ms, jitter: 0.25}
`
)

func sharedClient(addr, limits string) string {
	return fmt.Sprintf(`
defaults: {concurrency: 16, timeout: 10s}
providers:
  - name: s1
    type: openai
    base_url: http://%s/sim/s1/v1
    api_key_env: LLMBATCH_SHARED_TEST_KEY
    models: [{name: m1, category: small, input_per_mtok: 0.1, output_per_mtok: 0.4 %s}]
`, addr, limits)
}

// TestSharedThreeProcessesAtTheCeiling: three shards of one input, three processes, one simulated
// key enforcing 300 RPM in a strict 60 s window, limits shared through a real Redis; 450 prompts,
// so about 90 s at the ceiling of 5 requests/s. Configured limits: at least 97% of the ceiling;
// learned from headers only: at least 90%. The two cases run in parallel (each has its own
// simulator and Redis; together they use little CPU). Both: under 1%
// answered 429, the window never over the limit by more than a handful, every prompt exactly one
// ok line in exactly one output.
func TestSharedThreeProcessesAtTheCeiling(t *testing.T) {
	for _, c := range []struct {
		name, limits string
		want         float64
	}{
		{"configured", ", rpm: 300, tpm: 10000000", 0.97},
		{"learned", "", 0.90},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newSharedRig(t, ceilingSim)
			const n, rpm = 450, 300
			input := r.prompts(n)
			cfg := r.write("providers.yaml", sharedClient(r.addr, c.limits))
			stop := make(chan struct{})
			var first, last time.Time
			watched := make(chan struct{})
			go func() { first, last = watchSim(t, r.addr, "s1/m1", n, stop); close(watched) }()
			res := r.runShards(3, input, cfg, nil, nil)
			close(stop)
			<-watched
			for i, p := range res {
				if p.code != 0 {
					t.Fatalf("shard %d/3 exited %d:\n%s", i+1, p.code, p.stderr)
				}
				if strings.Contains(p.stderr, sharedTestKey) {
					t.Error("the API key is in the logs")
				}
			}
			oneOKLineEach(t, res, n)
			st := simServed(t, r.addr)["s1/m1"]
			el := last.Sub(first).Seconds()
			share := float64(n) / el / (rpm / 60.0)
			t.Logf("%d ok in %.2fs = %.2f/s, %.1f%% of the ceiling of %d/s (first request to last answer); %d requests, %d answered 429; most in a 60 s window %d (RPM %d)",
				n, el, float64(n)/el, 100*share, rpm/60, st.Requests, st.RateLimited, st.MaxInWindow, rpm)
			if share < c.want {
				t.Errorf("combined throughput %.1f%% of the ceiling, want ≥ %.0f%%", 100*share, 100*c.want)
			}
			if float64(st.RateLimited) >= 0.01*float64(st.Requests) {
				t.Errorf("%d of %d requests answered 429, want under 1%%", st.RateLimited, st.Requests)
			}
			if st.MaxInWindow > rpm+5 {
				t.Errorf("the simulator saw %d requests in one window, limit %d", st.MaxInWindow, rpm)
			}
		})
	}
}

// TestSharedMaxCostAcrossProcesses: three processes of one job share one --max-cost: the spend of
// the three outputs together stays under the cap.
func TestSharedMaxCostAcrossProcesses(t *testing.T) {
	r := newSharedRig(t, `
providers:
  - name: s1
    type: sim
    models: [{name: m1, category: small}]
    sim: {latency: 20ms}
`)
	input := r.prompts(300)
	// Pricey, so the cap is reached after a few dozen prompts.
	cfg := r.write("providers.yaml", fmt.Sprintf(`
defaults: {concurrency: 8, timeout: 10s}
providers:
  - name: s1
    type: openai
    base_url: http://%s/sim/s1/v1
    api_key_env: LLMBATCH_SHARED_TEST_KEY
    models: [{name: m1, category: small, input_per_mtok: 2000, output_per_mtok: 8000}]
`, r.addr))
	const capUSD = 20.0
	res := r.runShards(3, input, cfg, []string{"--max-cost", fmt.Sprint(capUSD), "--job", "nightly"}, nil)
	budgetStops := 0
	for i, p := range res {
		switch p.code {
		case ExitBudget:
			budgetStops++
		case 0:
		default:
			t.Fatalf("shard %d/3 exited %d:\n%s", i+1, p.code, p.stderr)
		}
	}
	ok, cost := okLines(t, res)
	t.Logf("%d prompts answered for $%.4f of a $%.0f cap; %d of 3 processes stopped by the budget", len(ok), cost, capUSD, budgetStops)
	if cost > capUSD {
		t.Errorf("the three processes spent $%.6f together, over the shared cap of $%.0f", cost, capUSD)
	}
	if budgetStops == 0 || cost < capUSD/2 {
		t.Errorf("spent $%.4f, %d budget stops: the cap should stop the job near $%.0f", cost, budgetStops, capUSD)
	}
}

// TestSharedRedisKilledAndRestarted: Redis is killed once the outputs hold a third of the lines and
// restarted five seconds later. Every process finishes, every prompt has exactly one ok line and
// the simulator answered no prompt twice.
func TestSharedRedisKilledAndRestarted(t *testing.T) {
	r := newSharedRig(t, sharedSim)
	const n = 360
	input := r.prompts(n)
	cfg := r.write("providers.yaml", sharedClient(r.addr, ", rpm: 1200, tpm: 10000000"))
	outputs := func() int {
		k := 0
		for i := range 3 {
			k += countLines(filepath.Join(r.dir, fmt.Sprintf("out-%d.jsonl", i+1)))
		}
		return k
	}
	res := r.runShards(3, input, cfg, nil, func() {
		if !pollUntil(60*time.Second, func() bool { return outputs() >= n/3 }) {
			t.Error("the outputs never reached a third of the prompts")
			return
		}
		t.Logf("killing Redis at %d lines", outputs())
		r.redis.Kill()
		// Down long enough for every process to need it: the slots reserved before the kill reach
		// about 48/20 s ahead.
		time.Sleep(5 * time.Second)
		t.Logf("restarting Redis at %d lines", outputs())
		r.redis.Restart()
	})
	for i, p := range res {
		if p.code != 0 {
			t.Fatalf("shard %d/3 exited %d:\n%s", i+1, p.code, p.stderr)
		}
		if !strings.Contains(p.stderr, "Redis lost") || !strings.Contains(p.stderr, "Redis is back") {
			t.Logf("shard %d/3 did not notice the outage (it may have been between requests):\n%s", i+1, p.stderr)
		}
	}
	oneOKLineEach(t, res, n)
	st := simServed(t, r.addr)["s1/m1"]
	t.Logf("simulator: %+v", st)
	if st.OK != n {
		t.Errorf("the simulator answered %d times for %d prompts", st.OK, n)
	}
	noticed := 0
	for _, p := range res {
		if strings.Contains(p.stderr, "Redis lost") {
			noticed++
		}
	}
	if noticed == 0 {
		t.Error("no process noticed that Redis was gone")
	}
}

// oneSimModel is a config with one in-process simulated provider and model, for the tests that run
// in this process.
const oneSimModel = `
providers:
  - name: s1
    type: sim
    models: [{name: m1, category: small}]
`

// TestRunSharedUsageErrors: an unreachable Redis, a bad --shard or --job without --shared stop the
// run before anything is sent, with exit 2 and no password in the message.
func TestRunSharedUsageErrors(t *testing.T) {
	s := newSimRun(t, oneSimModel, 20, 40)
	srv := redistest.Start(t)
	srv.Kill()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--shared", "redis://:hunter2@" + srv.Addr() + "/0"}, "redis unreachable"},
		{[]string{"--shared", "http://" + srv.Addr()}, "redis:// or rediss://"},
		{[]string{"--shard", "4/3"}, "--shard \"4/3\""},
		{[]string{"--job", "nightly"}, "--job names the budget shared through Redis"},
	} {
		code, _ := s.run(c.args...)
		if code != ExitUsage || !strings.Contains(s.stderr.String(), c.want) || strings.Contains(s.stderr.String(), "hunter2") {
			t.Errorf("run %v: exit %d, stderr %q; want exit 2 saying %q", c.args, code, s.stderr.String(), c.want)
		}
		if st := s.srv.Stats()["s1/m1"]; st.Requests != 0 {
			t.Fatalf("run %v sent %d requests", c.args, st.Requests)
		}
	}
}

// TestRunSharedFromConfig: the config's shared.url is used (here: unreachable, so exit 2), and a
// password written into it is refused without being printed.
func TestRunSharedFromConfig(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	for url, want := range map[string]string{
		"redis://" + srv.Addr() + "/0":             "redis unreachable",
		"redis://:pw-in-file@" + srv.Addr() + "/0": "holds a password",
	} {
		s := newSimRun(t, "\nshared: {url: \""+url+"\"}"+oneSimModel, 5, 40)
		code, _ := s.run()
		if code != ExitUsage || !strings.Contains(s.stderr.String(), want) || strings.Contains(s.stderr.String(), "pw-in-file") {
			t.Errorf("shared.url %s: exit %d, stderr %q; want exit 2 saying %q", shared.Redact(url), code, s.stderr.String(), want)
		}
	}
}

// TestRunShardsSplitTheInput: the three shards' outputs are disjoint and together answer every
// prompt once, with the in-process simulator.
func TestRunShardsSplitTheInput(t *testing.T) {
	s := newSimRun(t, oneSimModel, 90, 40)
	seen := map[string]int{}
	base := s.output
	for i := 1; i <= 3; i++ {
		s.output = fmt.Sprintf("%s.%d", base, i)
		if code, _ := s.run("--shard", fmt.Sprintf("%d/3", i), "-o", s.output); code != ExitOK {
			t.Fatalf("shard %d/3: exit %d: %s", i, code, s.stderr.String())
		}
		got := s.lines() // checks that each answer belongs to its prompt
		if len(got) == 0 || len(got) == 90 {
			t.Errorf("shard %d/3 answered %d of 90 prompts", i, len(got))
		}
		for _, r := range got {
			if r.Status != results.StatusOK {
				t.Errorf("%s: %s", r.CustomID, r.Status)
			}
			seen[r.CustomID]++
		}
		// Resuming the shard sends nothing more.
		before := s.srv.Stats()["s1/m1"].Requests
		if code, _ := s.run("--shard", fmt.Sprintf("%d/3", i), "-o", s.output); code != ExitOK {
			t.Fatalf("resuming shard %d/3: exit %d", i, code)
		}
		if after := s.srv.Stats()["s1/m1"].Requests; after != before {
			t.Errorf("resuming shard %d/3 sent %d requests", i, after-before)
		}
	}
	if len(seen) != 90 {
		t.Errorf("the shards answered %d distinct prompts of 90", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s answered by %d shards", id, n)
		}
	}
}
