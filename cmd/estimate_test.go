package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/config"
)

const (
	fixtureConfig  = "../testdata/cmd/providers.yaml"
	fixturePrompts = "../testdata/cmd/prompts.jsonl"
)

// fixtureEnv sets every key of the fixture config, with values that must never be printed.
func fixtureEnv(unset ...string) func(string) string {
	env := map[string]string{"CHEAP_KEY": "sk-secret-cheap", "FREE_KEY": "sk-secret-free", "BIG_KEY": "sk-secret-big"}
	for _, k := range unset {
		delete(env, k)
	}
	return func(k string) string { return env[k] }
}

func testStreams() (*IOStreams, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}, out, errOut
}

func loadFixture(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(fixtureConfig)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func configFunc(path string) func() (*config.Config, error) {
	return func() (*config.Config, error) { return config.Load(path) }
}

// exitCode returns the exit code an error maps to (0 for nil).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("error without exit code: %v", err)
	}
	return ee.Code
}

func runEstimateJSON(t *testing.T, opts *EstimateOptions) estimateJSON {
	t.Helper()
	io, out, errOut := testStreams()
	opts.IO, opts.JSON = io, true
	if opts.Getenv == nil {
		opts.Getenv = fixtureEnv()
	}
	if opts.Config == nil {
		opts.Config = configFunc(fixtureConfig)
	}
	if opts.Input == "" {
		opts.Input = fixturePrompts
	}
	if err := estimateRun(context.Background(), opts); err != nil {
		t.Fatalf("estimate: %v\nstderr: %s", err, errOut)
	}
	var got estimateJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("estimate --json output is not one JSON object: %v\n%s", err, out)
	}
	return got
}

// checkPlan asserts a plan's internal consistency against the fixture's prices.
func checkPlan(t *testing.T, cfg *config.Config, p estimatePlanJSON, wantPrompts int64) {
	t.Helper()
	var prompts, in, out int64
	var cost, longest float64
	for _, m := range p.Models {
		_, cm := cfg.Lookup(m.Provider, m.Model)
		if cm == nil {
			t.Fatalf("model %s/%s is not in the config", m.Provider, m.Model)
		}
		want := (float64(m.InputTokens)*cm.InputPerMTok + float64(m.OutputTokens)*cm.OutputPerMTok) / 1e6
		if math.Abs(m.CostUSD-want) > 1e-12 {
			t.Errorf("%s/%s: cost %g, want tokens × price = %g", m.Provider, m.Model, m.CostUSD, want)
		}
		if m.ExactTokens != (cm.Encoding != "") {
			t.Errorf("%s/%s: exact_tokens %v with encoding %q", m.Provider, m.Model, m.ExactTokens, cm.Encoding)
		}
		if m.WallTimeSeconds <= 0 || m.WallTimeBound == "" {
			t.Errorf("%s/%s: wall time %v bound %q", m.Provider, m.Model, m.WallTimeSeconds, m.WallTimeBound)
		}
		prompts += m.Prompts
		in += m.InputTokens
		out += m.OutputTokens
		cost += m.CostUSD
		longest = math.Max(longest, m.WallTimeSeconds)
	}
	if prompts != wantPrompts || p.Prompts != wantPrompts {
		t.Errorf("prompts: total %d, models sum %d, want %d", p.Prompts, prompts, wantPrompts)
	}
	if in != p.InputTokens || out != p.OutputTokens || math.Abs(cost-p.CostUSD) > 1e-12 {
		t.Errorf("totals %d/%d/%g differ from the models' sums %d/%d/%g", p.InputTokens, p.OutputTokens, p.CostUSD, in, out, cost)
	}
	if p.WallTimeSeconds != longest {
		t.Errorf("wall time %v, want the longest model's %v", p.WallTimeSeconds, longest)
	}
}

func modelByName(p estimatePlanJSON, name string) *estimateModelJSON {
	for i := range p.Models {
		if p.Models[i].Model == name {
			return &p.Models[i]
		}
	}
	return nil
}

func TestEstimateJSONCostPolicy(t *testing.T) {
	cfg := loadFixture(t)
	got := runEstimateJSON(t, &EstimateOptions{})
	checkPlan(t, cfg, got.estimatePlanJSON, 7)
	checkPlan(t, cfg, got.Alternative, 7)
	if got.Prefer != "cost" || got.Alternative.Prefer != "speed" {
		t.Errorf("policies %q / %q", got.Prefer, got.Alternative.Prefer)
	}
	// Free tier first, but never beyond its daily limit of 2; the third small prompt pays.
	if m := modelByName(got.estimatePlanJSON, "free-small"); m == nil || m.Prompts != 2 || m.CostUSD != 0 {
		t.Errorf("free-small: %+v", m)
	}
	if m := modelByName(got.estimatePlanJSON, "small-model"); m == nil || m.Prompts != 1 {
		t.Errorf("small-model: %+v", m)
	}
	// The long prompt escalates (no small model fits it); the pinned one goes where it is pinned.
	if m := modelByName(got.estimatePlanJSON, "large-model"); m == nil || m.Prompts != 2 || m.ExactTokens {
		t.Errorf("large-model: %+v", m)
	}
	var estimated int64 // prompts on models without a tokenizer
	for _, m := range got.Models {
		if !m.ExactTokens {
			estimated += m.Prompts
		}
	}
	if got.Escalated != 1 || got.Unassigned != 0 || got.ExactTokens || got.EstimatedPrompts != estimated || estimated != 4 {
		t.Errorf("escalated %d unassigned %d exact %v estimated %d", got.Escalated, got.Unassigned, got.ExactTokens, got.EstimatedPrompts)
	}
	if got.Alternative.CostUSD < got.CostUSD {
		t.Errorf("speed (%g) cheaper than cost (%g)", got.Alternative.CostUSD, got.CostUSD)
	}
	if got.OverBudget || len(got.Warnings) != 0 {
		t.Errorf("over budget %v, warnings %v", got.OverBudget, got.Warnings)
	}
}

func TestEstimateTextShowsBothPolicies(t *testing.T) {
	io, out, errOut := testStreams()
	err := estimateRun(context.Background(), &EstimateOptions{IO: io, Getenv: fixtureEnv(),
		Config: configFunc(fixtureConfig), Input: fixturePrompts, Selection: SelectionFlags{Prefer: "speed"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	text := out.String()
	for _, want := range []string{"policy --prefer speed", "cheap/tiny-model", "big/large-model", "TOTAL",
		"Trade-off: with --prefer cost", "~", "moved up a category"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestEstimateMaxCostWarns(t *testing.T) {
	io, out, errOut := testStreams()
	err := estimateRun(context.Background(), &EstimateOptions{IO: io, Getenv: fixtureEnv(), JSON: true,
		Config: configFunc(fixtureConfig), Input: fixturePrompts, MaxCost: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	var got estimateJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.OverBudget || got.MaxCostUSD != 1e-9 || !strings.Contains(errOut.String(), "exceeds --max-cost") {
		t.Errorf("over_budget %v, stderr %q", got.OverBudget, errOut)
	}
}

func TestEstimateDeadline(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 250 { // more than two windows' worth of 120 RPM: the third share waits two windows
		b.WriteString(`{"id":"p` + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + `","prompt":"Classify: ok","category":"small","max_tokens":5}` + "\n")
	}
	input := filepath.Join(dir, "many.jsonl")
	if err := os.WriteFile(input, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := fixtureEnv("FREE_KEY") // small prompts: only cheap/small-model (120 RPM) unless escalated
	plain := runEstimateJSON(t, &EstimateOptions{Input: input, Getenv: env})
	if plain.WallTimeSeconds < 59 || len(plain.Models) != 1 {
		t.Fatalf("without deadline: %v s over %d models", plain.WallTimeSeconds, len(plain.Models))
	}
	// The deadline cannot be met within the small category (one lane): reported, never escalated for speed.
	io, out, errOut := testStreams()
	err := estimateRun(context.Background(), &EstimateOptions{IO: io, Getenv: env, JSON: true, Config: configFunc(fixtureConfig),
		Input: input, Selection: SelectionFlags{Deadline: 10e9}})
	if err != nil {
		t.Fatal(err)
	}
	var got estimateJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.DeadlineMet || got.DeadlineSeconds != 10 || len(got.Models) != 1 || !strings.Contains(errOut.String(), "no assignment meets the 10s deadline") {
		t.Errorf("deadline: met %v, %d models, stderr %q", got.DeadlineMet, len(got.Models), errOut)
	}
}

func TestEstimateBadInputListsEveryError(t *testing.T) {
	io, out, _ := testStreams()
	err := estimateRun(context.Background(), &EstimateOptions{IO: io, Getenv: fixtureEnv(),
		Config: configFunc(fixtureConfig), Input: "../testdata/cmd/bad.jsonl"})
	if code := exitCode(t, err); code != ExitUsage {
		t.Fatalf("exit %d, want 2 (%v)", code, err)
	}
	msg := err.Error()
	for _, want := range []string{"bad.jsonl:2:", "bad.jsonl:3:", "messages[0].role", "bad.jsonl:4:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if out.Len() != 0 {
		t.Errorf("stdout not empty on bad input: %q", out)
	}
}

func TestEstimatePinnedModelNotConfigured(t *testing.T) {
	io, out, _ := testStreams()
	err := estimateRun(context.Background(), &EstimateOptions{IO: io, Getenv: fixtureEnv(),
		Config: configFunc(fixtureConfig), Input: "../testdata/cmd/pin_unknown.jsonl"})
	if exitCode(t, err) != ExitUsage || !strings.Contains(err.Error(), `pin_unknown.jsonl:2: model: model "gpt-9-ultra" is not in the config`) {
		t.Errorf("err = %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q", out)
	}
	err = estimateRun(context.Background(), &EstimateOptions{IO: io, Getenv: fixtureEnv(),
		Config: configFunc(fixtureConfig), Input: fixturePrompts, Selection: SelectionFlags{Model: "nope"}})
	if exitCode(t, err) != ExitUsage || !strings.Contains(err.Error(), `--model nope: model "nope" is not in the config`) {
		t.Errorf("--model err = %v", err)
	}
}

func TestEstimateMissingKeySkipsProvider(t *testing.T) {
	// The pinned prompt pins only the provider whose key is unset: exit 2 naming the line.
	io, _, errOut := testStreams()
	err := estimateRun(context.Background(), &EstimateOptions{IO: io, Getenv: fixtureEnv("BIG_KEY"),
		Config: configFunc(fixtureConfig), Input: fixturePrompts})
	if exitCode(t, err) != ExitUsage || !strings.Contains(err.Error(), "prompts.jsonl:7: model: pinned only to unavailable models: big/large-model: provider key not set (BIG_KEY)") {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(errOut.String(), "warning: provider big skipped: BIG_KEY is not set") {
		t.Errorf("stderr = %q", errOut)
	}
	// Without pins, prompts the skipped provider would have served go elsewhere (or are reported).
	got := runEstimateJSON(t, &EstimateOptions{Getenv: fixtureEnv("FREE_KEY"), Input: "../testdata/cmd/pin_unknown.jsonl",
		Selection: SelectionFlags{Model: "tiny-model"}})
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "FREE_KEY") || got.Prompts != 2 || modelByName(got.estimatePlanJSON, "tiny-model").Prompts != 2 {
		t.Errorf("warnings %v prompts %d models %+v", got.Warnings, got.Prompts, got.Models)
	}
}

func TestEstimateStdin(t *testing.T) {
	data, err := os.ReadFile(fixturePrompts)
	if err != nil {
		t.Fatal(err)
	}
	io, out, _ := testStreams()
	io.In = bytes.NewReader(data)
	if err := estimateRun(context.Background(), &EstimateOptions{IO: io, Getenv: fixtureEnv(), JSON: true,
		Config: configFunc(fixtureConfig), Input: "-"}); err != nil {
		t.Fatal(err)
	}
	var got estimateJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Prompts != 7 || got.Input != "stdin" {
		t.Errorf("stdin estimate: %v %+v", err, got)
	}
}
