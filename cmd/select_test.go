package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSelectJSON(t *testing.T, opts *SelectOptions) map[string]selectJSON {
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
	if err := selectRun(context.Background(), opts); err != nil {
		t.Fatalf("select: %v\nstderr: %s", err, errOut)
	}
	got := map[string]selectJSON{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var l selectJSON
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got[l.CustomID] = l
	}
	return got
}

func TestSelectJSONPerPrompt(t *testing.T) {
	cfg := loadFixture(t)
	got := runSelectJSON(t, &SelectOptions{})
	if len(got) != 7 {
		t.Fatalf("%d lines, want 7", len(got))
	}
	want := map[string]string{ // id -> provider/model
		"t1": "cheap/tiny-model", "t2": "cheap/tiny-model",
		"s1": "free/free-small", "s2": "free/free-small", "s3": "cheap/small-model",
		"long1": "big/large-model", "pinned": "big/large-model",
	}
	for id, lane := range want {
		l := got[id]
		if l.Provider+"/"+l.Model != lane {
			t.Errorf("%s -> %s/%s, want %s", id, l.Provider, l.Model, lane)
			continue
		}
		_, m := cfg.Lookup(l.Provider, l.Model)
		cost := (float64(l.InputTokens)*m.InputPerMTok + float64(l.OutputTokens)*m.OutputPerMTok) / 1e6
		if math.Abs(l.CostUSD-cost) > 1e-15 || l.InputTokens <= 0 || l.OutputTokens <= 0 {
			t.Errorf("%s: cost %g for %d in / %d out, want %g", id, l.CostUSD, l.InputTokens, l.OutputTokens, cost)
		}
		if l.ExactTokens != (m.Encoding != "") {
			t.Errorf("%s: exact_tokens %v on %s", id, l.ExactTokens, lane)
		}
	}
	if l := got["long1"]; !l.Escalated || l.Category != "small" || l.LaneCategory != "large" {
		t.Errorf("long1: %+v", l)
	}
	if l := got["t1"]; l.Category != "tiny" || l.Escalated || l.Line != 1 {
		t.Errorf("t1: %+v", l)
	}
	// The first small prompt may fail over to the paid small model.
	if alt := got["s1"].Alternatives; len(alt) != 1 || alt[0] != "cheap/small-model" {
		t.Errorf("s1 alternatives = %v", alt)
	}
	// The long prompt's input is far beyond the small models' 2000-token window.
	if got["long1"].InputTokens < 2000 {
		t.Errorf("long1 input tokens = %d", got["long1"].InputTokens)
	}
}

func TestSelectExplain(t *testing.T) {
	got := runSelectJSON(t, &SelectOptions{Explain: true})
	l := got["long1"]
	if !strings.Contains(l.Why, "escalated from small: no small lane fits") || l.Analysis == "" {
		t.Errorf("long1 why = %q, analysis = %q", l.Why, l.Analysis)
	}
	var ctx int
	for _, e := range l.Excluded {
		if strings.HasPrefix(e.Reason, "context too small (needs ") {
			ctx++
		}
	}
	if ctx != 3 {
		t.Errorf("long1 excluded = %+v, want the tiny and both small models ruled out for context", l.Excluded)
	}
	if s3 := got["s3"]; len(s3.Excluded) != 3 || !strings.HasPrefix(s3.Excluded[0].Reason, "daily limit used") || s3.Why != "only capable lane" ||
		s3.Excluded[1].Reason != "wrong category: tiny, below the prompt's small (a prompt only goes up)" ||
		s3.Excluded[2].Reason != "wrong category: large, used only when no small lane can serve the prompt" {
		t.Errorf("s3: why %q excluded %+v", s3.Why, s3.Excluded)
	}
	if p := got["pinned"]; !strings.HasPrefix(p.Why, "pinned to model large-model") || len(p.Excluded) != 3 {
		t.Errorf("pinned: why %q excluded %+v", p.Why, p.Excluded)
	}
	if s1 := got["s1"]; s1.Why != "free tier" {
		t.Errorf("s1 why = %q", s1.Why)
	}

	io, out, _ := testStreams()
	if err := selectRun(context.Background(), &SelectOptions{IO: io, Getenv: fixtureEnv(), Config: configFunc(fixtureConfig),
		Input: fixturePrompts, Explain: true}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"ID  ", "small→large", "why: ", "ruled out cheap/small-model: context too small",
		"ruled out free/free-small: daily limit used", "ruled out 3 other models: pinned", "Per model (--prefer cost)", "TOTAL"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestSelectSpeedSharesWork(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "small.jsonl")
	var b bytes.Buffer
	for i := range 40 {
		fmt.Fprintf(&b, `{"id":"q%d","prompt":"Name the capital of country number %d.","category":"small","max_tokens":10}`+"\n", i, i)
	}
	if err := os.WriteFile(input, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	count := func(got map[string]selectJSON) map[string]int {
		n := map[string]int{}
		for _, l := range got {
			n[l.Provider+"/"+l.Model]++
		}
		return n
	}
	costLines := runSelectJSON(t, &SelectOptions{Input: input})
	speedLines := runSelectJSON(t, &SelectOptions{Input: input, Selection: SelectionFlags{Prefer: "speed"}})
	cost, speed := count(costLines), count(speedLines)
	// Cost: the free lane first, until its daily limit of 2; then the paid one.
	if cost["free/free-small"] != 2 || cost["cheap/small-model"] != 38 || costLines["q0"].Model != "free-small" {
		t.Errorf("cost split = %v, q0 on %s", cost, costLines["q0"].Model)
	}
	// Speed: the faster lane (120 RPM) starts; the slow free one (10 RPM) takes a share once the fast
	// one's queue is as long as one of its requests. Never the large model: no escalation for speed.
	if speed["big/large-model"] != 0 || speed["free/free-small"] != 2 || speedLines["q0"].Model != "small-model" {
		t.Errorf("speed split = %v, q0 on %s", speed, speedLines["q0"].Model)
	}
}

func TestSelectStreamsInInputOrder(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "many.jsonl")
	var b bytes.Buffer
	const n = 3000
	for i := range n {
		fmt.Fprintf(&b, `{"id":"r%05d","prompt":"Tag this item: %s","category":"tiny","max_tokens":3}`+"\n", i, strings.Repeat("w", i%97))
	}
	if err := os.WriteFile(input, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	io, out, _ := testStreams()
	if err := selectRun(context.Background(), &SelectOptions{IO: io, Getenv: fixtureEnv(), Config: configFunc(fixtureConfig),
		Input: input, JSON: true, Workers: 8}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	i := 0
	for ; sc.Scan(); i++ {
		var l selectJSON
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("r%05d", i); l.CustomID != want || l.Line != i+1 {
			t.Fatalf("line %d is %s (line %d), want %s", i, l.CustomID, l.Line, want)
		}
	}
	if i != n {
		t.Errorf("%d lines, want %d", i, n)
	}
}

func TestSelectBadInputAndUnservable(t *testing.T) {
	io, out, _ := testStreams()
	err := selectRun(context.Background(), &SelectOptions{IO: io, Getenv: fixtureEnv(), Config: configFunc(fixtureConfig),
		Input: "../testdata/cmd/bad.jsonl", JSON: true})
	if exitCode(t, err) != ExitUsage || !strings.Contains(err.Error(), "bad.jsonl:3:") || out.Len() != 0 {
		t.Errorf("bad input: err %v, stdout %q", err, out)
	}
	// --provider cheap cannot serve the long prompt: its row says why and the command exits 2.
	data, err := os.ReadFile(fixturePrompts)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	input := filepath.Join(t.TempDir(), "two.jsonl")
	if err := os.WriteFile(input, []byte(lines[0]+lines[5]), 0o600); err != nil {
		t.Fatal(err)
	}
	io, out, _ = testStreams()
	err = selectRun(context.Background(), &SelectOptions{IO: io, Getenv: fixtureEnv(), Config: configFunc(fixtureConfig),
		Input: input, JSON: true, Selection: SelectionFlags{Provider: "cheap"}})
	if exitCode(t, err) != ExitUsage || !strings.Contains(err.Error(), "two.jsonl:2: no lane can serve it (pinned to provider cheap): 2× context too small (needs ") {
		t.Errorf("unservable: err %v", err)
	}
	if !strings.Contains(out.String(), `"custom_id":"long1"`) || !strings.Contains(out.String(), `"error":"no lane can serve it`) {
		t.Errorf("stdout = %s", out)
	}
}

// TestSelectExplainNamesSignals: without a category hint, --explain names the analyser's category
// and the signals that decided it; a line's category hint and --model still win over the analyser.
func TestSelectExplainNamesSignals(t *testing.T) {
	input := filepath.Join(t.TempDir(), "mixed.jsonl")
	lines := `{"id":"yn","prompt":"Is Paris in France? Answer yes or no."}
{"id":"translate","prompt":"Translate into German: \"Could you please send me the invoice by the end of the week?\""}
{"id":"hinted","prompt":"Is Paris in France? Answer yes or no.","category":"large"}
`
	if err := os.WriteFile(input, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runSelectJSON(t, &SelectOptions{Input: input, Explain: true})
	if l := got["yn"]; l.Category != "tiny" || !strings.HasPrefix(l.Analysis, "tiny: ") || !strings.Contains(l.Analysis, "yes/no") {
		t.Errorf("yn: category %s, analysis %q; want tiny with its yes/no signal named", l.Category, l.Analysis)
	}
	if l := got["translate"]; l.Category != "small" || !strings.HasPrefix(l.Analysis, "small: ") || !strings.Contains(l.Analysis, "translation (translate)") {
		t.Errorf("translate: category %s, analysis %q; want small naming the translation", l.Category, l.Analysis)
	}
	if l := got["hinted"]; l.Category != "large" || l.Analysis != "category hint in the request" || l.Model != "large-model" {
		t.Errorf("hinted: category %s on %s, analysis %q; want the hint to win", l.Category, l.Model, l.Analysis)
	}
	pinned := runSelectJSON(t, &SelectOptions{Input: input, Explain: true, Selection: SelectionFlags{Model: "small-model"}})
	for id, l := range pinned {
		if l.Model != "small-model" {
			t.Errorf("--model small-model: %s went to %s/%s", id, l.Provider, l.Model)
		}
	}
}

// --explain lists every model not chosen with why: no key, disabled, context too small, wrong
// category.
func TestSelectExplainListsEveryModelRuledOut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "providers.yaml")
	if err := os.WriteFile(path, []byte(`
providers:
  - name: keyless
    type: openai
    base_url: http://127.0.0.1:1/v1
    api_key_env: KEYLESS_KEY
    models:
      - {name: k-small, category: small, context_window: 100000, input_per_mtok: 0.01, output_per_mtok: 0.01}
  - name: off
    type: openai
    enabled: false
    base_url: http://127.0.0.1:2/v1
    api_key_env: OFF_KEY
    models:
      - {name: o-small, category: small, context_window: 100000, input_per_mtok: 0.01, output_per_mtok: 0.01}
  - name: s
    type: sim
    models:
      - {name: s-tiny, category: tiny, context_window: 100000, input_per_mtok: 0.1, output_per_mtok: 0.1}
      - {name: s-narrow, category: small, context_window: 50, input_per_mtok: 0.2, output_per_mtok: 0.2}
      - {name: s-small, category: small, context_window: 100000, input_per_mtok: 0.5, output_per_mtok: 0.5}
      - {name: s-large, category: large, context_window: 100000, input_per_mtok: 5, output_per_mtok: 5}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(input, []byte(`{"id":"q","prompt":"Summarise the causes of the French revolution in three short paragraphs for a student.","category":"small","max_tokens":100}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runSelectJSON(t, &SelectOptions{Explain: true, Input: input, Config: configFunc(path), Getenv: func(string) string { return "" }})
	q := got["q"]
	if q.Provider+"/"+q.Model != "s/s-small" {
		t.Fatalf("chose %s/%s, want s/s-small", q.Provider, q.Model)
	}
	reasons := map[string]string{}
	for _, e := range q.Excluded {
		reasons[e.Provider+"/"+e.Model] = e.Reason
	}
	for lane, want := range map[string]string{
		"keyless/k-small": "KEYLESS_KEY",
		"off/o-small":     "disabled",
		"s/s-narrow":      "context too small (needs ",
		"s/s-tiny":        "wrong category: tiny, below the prompt's small",
		"s/s-large":       "wrong category: large, used only when no small lane can serve the prompt",
	} {
		if r, ok := reasons[lane]; !ok || !strings.Contains(r, want) {
			t.Errorf("%s: ruled out %v for %q, want a reason with %q", lane, ok, r, want)
		}
	}
	if len(q.Excluded) != 5 {
		t.Errorf("%d models ruled out, want the 5 others: %+v", len(q.Excluded), q.Excluded)
	}
}
