package selector

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/model"
)

// lane builds an available lane with no daily quota and a large concurrency (so limits, not the
// latency guess, bound wall time when they are set).
func lane(provider, name string, cat model.Category, window int, in, out float64) *Lane {
	return &Lane{Provider: provider, Name: name, Category: cat, ContextWindow: window,
		InputPerMTok: in, OutputPerMTok: out, Available: true, Concurrency: 1000,
		DailyRequestsLeft: -1, DailyTokensLeft: -1}
}

func item(cat model.Category, in, out int) Item {
	it := Item{Category: cat, OutputTokens: out}
	for e := range it.InputTokens {
		it.InputTokens[e] = in
	}
	return it
}

func names(ls []*Lane) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, ",")
}

func TestChooseFreeFirstThenCheapest(t *testing.T) {
	pricey := lane("a", "pricey", model.Tiny, 0, 1, 4)
	cheap := lane("b", "cheap", model.Tiny, 0, 0.1, 0.4)
	free := lane("c", "free", model.Tiny, 0, 0.5, 0.5)
	free.Free = true
	big := lane("d", "big", model.Large, 0, 0.01, 0.01) // cheaper, but a higher category: not a candidate
	ch := Choose(item(model.Tiny, 1000, 100), []*Lane{pricey, cheap, free, big}, Options{})
	if ch.Err != nil {
		t.Fatal(ch.Err)
	}
	if got, want := names(ch.Lanes), "c/free,b/cheap,a/pricey"; got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
	if ch.Escalated || ch.Category != model.Tiny || ch.Why != "free tier" {
		t.Errorf("category %s escalated %v why %q", ch.Category, ch.Escalated, ch.Why)
	}
}

func TestChooseCostIsPerPrompt(t *testing.T) {
	inCheap := lane("a", "in-cheap", model.Small, 0, 0.1, 10)
	outCheap := lane("b", "out-cheap", model.Small, 0, 2, 0.5)
	lanes := []*Lane{inCheap, outCheap}
	if ch := Choose(item(model.Small, 10000, 10), lanes, Options{}); ch.Lanes[0] != inCheap {
		t.Errorf("input-heavy prompt went to %s", ch.Lanes[0])
	}
	if ch := Choose(item(model.Small, 10, 10000), lanes, Options{}); ch.Lanes[0] != outCheap {
		t.Errorf("output-heavy prompt went to %s", ch.Lanes[0])
	}
	p := NewPlanner(lanes, Options{})
	it := item(model.Small, 10000, 10)
	a, err := p.Add(&it)
	if err != nil {
		t.Fatal(err)
	}
	if want := (10000*0.1 + 10*10) / 1e6; math.Abs(a.Cost-want) > 1e-15 {
		t.Errorf("cost = %g, want %g", a.Cost, want)
	}
}

func TestChooseContextFitAndEscalation(t *testing.T) {
	small := lane("a", "small", model.Small, 8000, 0.1, 0.4)
	large := lane("b", "large", model.Large, 200000, 2, 8)
	reasoning := lane("c", "think", model.Reasoning, 1000000, 1, 4)
	lanes := []*Lane{small, large, reasoning}

	ch := Choose(item(model.Small, 1000, 100), lanes, Options{})
	if ch.Escalated || ch.Lanes[0] != small || len(ch.Lanes) != 1 {
		t.Fatalf("short prompt: %s escalated=%v", names(ch.Lanes), ch.Escalated)
	}

	ch = Choose(item(model.Small, 150000, 100), lanes, Options{})
	if !ch.Escalated || ch.Category != model.Large || ch.Lanes[0] != large {
		t.Fatalf("long prompt: %s category %s escalated=%v", names(ch.Lanes), ch.Category, ch.Escalated)
	}
	if !strings.Contains(ch.Why, "escalated from small: no small lane fits 150100 tokens of context") {
		t.Errorf("why = %q", ch.Why)
	}
	// Every other lane is listed: the small one too small, the reasoning one of a category used
	// only when no large lane can serve the prompt.
	if len(ch.Excluded) != 2 || ch.Excluded[0].Lane != small || ch.Excluded[0].Kind != ExclContext ||
		ch.Excluded[0].Reason != "context too small (needs 150100, has 8000)" ||
		ch.Excluded[1].Lane != reasoning || ch.Excluded[1].Kind != ExclCategory ||
		ch.Excluded[1].Reason != "wrong category: reasoning, used only when no large lane can serve the prompt" {
		t.Errorf("excluded = %+v", ch.Excluded)
	}

	// Too long for the large lane too: two steps up.
	ch = Choose(item(model.Small, 300000, 100), lanes, Options{})
	if ch.Lanes[0] != reasoning || ch.Category != model.Reasoning || len(ch.Excluded) != 2 {
		t.Errorf("very long prompt: %s excluded %d", names(ch.Lanes), len(ch.Excluded))
	}

	// Max output beyond the model's limit.
	small.MaxOutputTokens = 4096
	it := item(model.Small, 100, 100)
	it.MaxOutputTokens = 5000
	ch = Choose(it, lanes, Options{})
	if ch.Lanes[0] != large || ch.Excluded[0].Reason != "max output too small (needs 5000, has 4096)" {
		t.Errorf("max output: %s %+v", names(ch.Lanes), ch.Excluded)
	}

	// Nothing fits at all: an error naming why.
	ch = Choose(item(model.Small, 2000000, 100), lanes, Options{})
	if ch.Err == nil || len(ch.Lanes) != 0 || !strings.Contains(ch.Err.Error(), "context too small (needs 2000100") {
		t.Errorf("err = %v, lanes %s", ch.Err, names(ch.Lanes))
	}
}

func TestChooseEscalatesWhenUnavailableOrExhausted(t *testing.T) {
	tiny := lane("a", "tiny", model.Tiny, 0, 0.1, 0.1)
	tiny.Available, tiny.Unavailable = false, "provider key not set"
	small := lane("b", "small", model.Small, 0, 0.2, 0.2)
	lanes := []*Lane{tiny, small}
	ch := Choose(item(model.Tiny, 10, 10), lanes, Options{})
	if ch.Lanes[0] != small || !ch.Escalated || !strings.Contains(ch.Why, "every tiny lane is unavailable (provider key not set)") {
		t.Errorf("unavailable: %s %q", names(ch.Lanes), ch.Why)
	}
	if ch.Excluded[0].Reason != "provider key not set" {
		t.Errorf("exclusion = %q", ch.Excluded[0].Reason)
	}

	tiny.Available, tiny.DailyRequestsLeft = true, 0
	ch = Choose(item(model.Tiny, 10, 10), lanes, Options{})
	if ch.Lanes[0] != small || ch.Excluded[0].Kind != ExclDaily || !strings.HasPrefix(ch.Excluded[0].Reason, "daily limit used") {
		t.Errorf("exhausted: %s %+v", names(ch.Lanes), ch.Excluded)
	}

	small.Available = false
	ch = Choose(item(model.Tiny, 10, 10), lanes, Options{})
	if ch.Err == nil || !strings.Contains(ch.Err.Error(), "daily limit used") || !strings.Contains(ch.Err.Error(), "unavailable") {
		t.Errorf("err = %v", ch.Err)
	}
}

func TestChoosePins(t *testing.T) {
	oa := lane("openai", "gpt-4o-mini", model.Small, 0, 0.15, 0.6)
	az := lane("azure", "gpt-4o-mini", model.Small, 0, 0.10, 0.5)
	nano := lane("openai", "gpt-4.1-nano", model.Tiny, 0, 0.1, 0.4)
	groq := lane("groq", "openai/gpt-oss-20b", model.Small, 0, 0.1, 0.5)
	lanes := []*Lane{oa, az, nano, groq}

	// A model pinned in the request matches every provider that serves it, regardless of category.
	it := item(model.Tiny, 100, 10)
	it.PinModel = "gpt-4o-mini"
	ch := Choose(it, lanes, Options{})
	if got := names(ch.Lanes); got != "azure/gpt-4o-mini,openai/gpt-4o-mini" {
		t.Errorf("pinned model lanes = %s", got)
	}
	if ch.Escalated || !strings.HasPrefix(ch.Why, "pinned to model gpt-4o-mini") {
		t.Errorf("escalated=%v why=%q", ch.Escalated, ch.Why)
	}
	if len(ch.Excluded) != 2 || ch.Excluded[0].Reason != "pinned to model gpt-4o-mini" {
		t.Errorf("excluded = %+v", ch.Excluded)
	}

	// --provider narrows it; --model overrides the request's model.
	ch = Choose(it, lanes, Options{PinProvider: "openai"})
	if names(ch.Lanes) != "openai/gpt-4o-mini" {
		t.Errorf("provider pin: %s", names(ch.Lanes))
	}
	ch = Choose(it, lanes, Options{PinModel: "gpt-4.1-nano"})
	if names(ch.Lanes) != "openai/gpt-4.1-nano" {
		t.Errorf("--model override: %s", names(ch.Lanes))
	}
	// Provider pin alone keeps the ladder within that provider.
	ch = Choose(item(model.Tiny, 100, 10), lanes, Options{PinProvider: "groq"})
	if names(ch.Lanes) != "groq/openai/gpt-oss-20b" || !ch.Escalated {
		t.Errorf("provider-only pin: %s escalated=%v", names(ch.Lanes), ch.Escalated)
	}
	// Names with slashes, and the provider/model form.
	for _, pin := range []string{"openai/gpt-oss-20b", "groq/openai/gpt-oss-20b"} {
		it.PinModel = pin
		if ch := Choose(it, lanes, Options{}); names(ch.Lanes) != "groq/openai/gpt-oss-20b" {
			t.Errorf("pin %q: %s (%v)", pin, names(ch.Lanes), ch.Err)
		}
	}
	it.PinModel = "claude-opus"
	if ch := Choose(it, lanes, Options{}); ch.Err == nil || !strings.Contains(ch.Err.Error(), `"claude-opus"`) {
		t.Errorf("unknown pin err = %v", ch.Err)
	}
	// Pinned only to an unavailable lane: the error says so.
	groq.Available, groq.Unavailable = false, "provider key not set"
	it.PinModel = "openai/gpt-oss-20b"
	if ch := Choose(it, lanes, Options{}); ch.Err == nil || !strings.Contains(ch.Err.Error(), "provider key not set") {
		t.Errorf("pinned unavailable err = %v", ch.Err)
	}
}

func TestItemInputPerEncoding(t *testing.T) {
	oa := lane("openai", "gpt", model.Small, 0, 1, 1)
	oa.Encoding = EncO200K
	cl := lane("anthropic", "claude", model.Small, 0, 1, 1)
	it := Item{Category: model.Small, OutputTokens: 5}
	it.InputTokens[EncO200K], it.Exact[EncO200K] = 100, true
	it.InputTokens[EncEstimate] = 130
	p := NewPlanner([]*Lane{oa, cl}, Options{})
	a, err := p.Add(&it)
	if err != nil || a.Lane != 0 || a.Input != 100 || !a.Exact {
		t.Fatalf("assignment %+v err %v", a, err)
	}
	if n, exact := it.Input(cl); n != 130 || exact {
		t.Errorf("estimate lane input = %d exact=%v", n, exact)
	}
	it.InputTokens[EncEstimate] = 0
	if n, exact := it.Input(cl); n != 100 || exact {
		t.Errorf("fallback input = %d exact=%v", n, exact)
	}
}

func TestPlanDailyLimitSplit(t *testing.T) {
	cheap := lane("a", "cheap", model.Small, 0, 0.1, 0.1)
	cheap.DailyRequestsLeft = 3
	mid := lane("b", "mid", model.Small, 0, 0.2, 0.2)
	mid.DailyTokensLeft = 2 * 110 // room for two 100+10-token prompts
	dear := lane("c", "dear", model.Large, 0, 5, 5)
	dear.DailyRequestsLeft = 1
	items := make([]Item, 7)
	for i := range items {
		items[i] = item(model.Small, 100, 10)
	}
	pl := BuildPlan(items, []*Lane{cheap, mid, dear}, Options{})
	got := []int64{pl.Lanes[0].DailyRequestsLeft, pl.Summary.Lanes[0].Prompts, pl.Summary.Lanes[1].Prompts, pl.Summary.Lanes[2].Prompts}
	if want := []int64{3, 3, 2, 1}; !equal(got, want) {
		t.Errorf("left/prompts = %v, want %v", got, want)
	}
	if pl.Summary.Escalated != 1 || !pl.Items[5].Escalated || pl.Items[5].Category != model.Large {
		t.Errorf("escalation: %d %+v", pl.Summary.Escalated, pl.Items[5])
	}
	if pl.Summary.Unassigned != 1 || pl.Items[6].Lane != -1 || pl.Errors[6] == nil ||
		!strings.Contains(pl.Errors[6].Error(), "daily limit used") {
		t.Errorf("unassigned %d, item %+v, err %v", pl.Summary.Unassigned, pl.Items[6], pl.Errors[6])
	}
	// The first items' alternatives include the mid lane (for failover); cost totals add up.
	if alt := names(pl.Alternatives(0)); alt != "a/cheap,b/mid" {
		t.Errorf("alternatives = %s", alt)
	}
	var sum float64
	for _, a := range pl.Items {
		sum += a.Cost
	}
	if math.Abs(sum-pl.Summary.CostUSD) > 1e-12 || pl.Summary.InputTokens != 600 || pl.Summary.OutputTokens != 60 {
		t.Errorf("totals: cost %g vs %g, tokens %d/%d", sum, pl.Summary.CostUSD, pl.Summary.InputTokens, pl.Summary.OutputTokens)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPlanSpeedSharesByCapacity(t *testing.T) {
	slow := lane("a", "slow", model.Small, 0, 0.1, 0.1)
	slow.Limits.RPM = 100
	fast := lane("b", "fast", model.Small, 0, 0.3, 0.3)
	fast.Limits.RPM = 300
	tpmBound := lane("c", "tpm", model.Small, 0, 0.2, 0.2)
	tpmBound.Limits = Limits{RPM: 10000, TPM: 110 * 200} // 200 prompts of 110 tokens per minute
	big := lane("d", "big", model.Large, 0, 0.01, 0.01)
	big.Limits.RPM = 100000
	items := make([]Item, 1200)
	for i := range items {
		items[i] = item(model.Small, 100, 10)
	}
	lanes := []*Lane{slow, fast, tpmBound, big}
	speed := BuildPlan(items, lanes, Options{Prefer: PreferSpeed})
	got := []int64{speed.Summary.Lanes[0].Prompts, speed.Summary.Lanes[1].Prompts, speed.Summary.Lanes[2].Prompts, speed.Summary.Lanes[3].Prompts}
	// capacity 100:300:200 -> 200, 600, 400; never the large lane
	want := []int64{200, 600, 400, 0}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1 {
			t.Errorf("speed split = %v, want ≈ %v", got, want)
			break
		}
	}
	if w := speed.Summary.WallTime; w < 119*time.Second || w > 121*time.Second {
		t.Errorf("speed wall time = %s, want ≈ 2m", w)
	}
	if speed.Summary.Lanes[2].Bound != BoundTPM || speed.Summary.Lanes[0].Bound != BoundRPM {
		t.Errorf("bounds = %s %s", speed.Summary.Lanes[2].Bound, speed.Summary.Lanes[0].Bound)
	}

	cost := BuildPlan(items, lanes, Options{})
	if cost.Summary.Lanes[0].Prompts != 1200 || cost.Summary.WallTime != 12*time.Minute {
		t.Errorf("cost: %d prompts on the cheap lane, wall %s", cost.Summary.Lanes[0].Prompts, cost.Summary.WallTime)
	}
	if cost.Summary.CostUSD >= speed.Summary.CostUSD {
		t.Errorf("cost policy %g not cheaper than speed %g", cost.Summary.CostUSD, speed.Summary.CostUSD)
	}
}

func TestPlanCostSharesEquallyCheapLanes(t *testing.T) {
	slowFree := lane("gemini", "flash", model.Small, 0, 0, 0)
	slowFree.Free, slowFree.Limits.RPM = true, 10
	fastFree := lane("groq", "llama", model.Small, 0, 0, 0)
	fastFree.Free, fastFree.Limits.RPM = true, 30
	paid := lane("openai", "mini", model.Small, 0, 0.1, 0.1)
	paid.Limits.RPM = 10000
	items := make([]Item, 40)
	for i := range items {
		items[i] = item(model.Small, 100, 10)
	}
	lanes := []*Lane{slowFree, fastFree, paid}
	pl := BuildPlan(items, lanes, Options{})
	got := []int64{pl.Summary.Lanes[0].Prompts, pl.Summary.Lanes[1].Prompts, pl.Summary.Lanes[2].Prompts}
	if !equal(got, []int64{10, 30, 0}) || pl.Summary.CostUSD != 0 || pl.Summary.WallTime != time.Minute {
		t.Errorf("split %v cost %g wall %s, want 10/30/0 free in 1m", got, pl.Summary.CostUSD, pl.Summary.WallTime)
	}
	if why := Choose(items[0], lanes, Options{}).Why; why != "free tier, shared with 1 equally cheap lanes by earliest finish" {
		t.Errorf("why = %q", why)
	}
}

func TestPlanDeadlineAddsLanesCheapestFirst(t *testing.T) {
	var lanes []*Lane
	for i, n := range []string{"one", "two", "three"} {
		l := lane("p", n, model.Small, 0, float64(i+1), float64(i+1))
		l.Limits.RPM = 60
		lanes = append(lanes, l)
	}
	items := make([]Item, 120)
	for i := range items {
		items[i] = item(model.Small, 100, 10)
	}
	none := BuildPlan(items, lanes, Options{})
	if none.Summary.Lanes[0].Prompts != 120 || none.Summary.WallTime != 2*time.Minute || !none.Summary.DeadlineMet {
		t.Errorf("no deadline: %+v", none.Summary)
	}
	d := BuildPlan(items, lanes, Options{Deadline: time.Minute})
	got := []int64{d.Summary.Lanes[0].Prompts, d.Summary.Lanes[1].Prompts, d.Summary.Lanes[2].Prompts}
	if !equal(got, []int64{60, 60, 0}) || !d.Summary.DeadlineMet || d.Summary.WallTime > time.Minute {
		t.Errorf("deadline 1m: split %v wall %s met %v", got, d.Summary.WallTime, d.Summary.DeadlineMet)
	}
	ch := NewPlanner(lanes, Options{Deadline: time.Minute})
	for i := range 60 {
		ch.Add(&items[i])
	}
	if why := ch.Explain(&items[60]).Why; !strings.Contains(why, "cheaper lanes would miss the 1m0s deadline") {
		t.Errorf("why = %q", why)
	}
	tight := BuildPlan(items, lanes, Options{Deadline: 30 * time.Second})
	if tight.Summary.DeadlineMet || tight.Summary.WallTime > 41*time.Second {
		t.Errorf("deadline 30s: met %v wall %s (want not met, balanced ≈ 40s)", tight.Summary.DeadlineMet, tight.Summary.WallTime)
	}
}

func TestWallTimeGuessWithoutLimits(t *testing.T) {
	l := lane("ollama", "llama", model.Small, 0, 0, 0)
	l.Concurrency = 2
	items := make([]Item, 10)
	for i := range items {
		items[i] = item(model.Small, 100, 80)
	}
	pl := BuildPlan(items, []*Lane{l}, Options{Latency: time.Second, OutputTokensPerSecond: 80})
	// 10 requests × (1 s + 80/80 s) / 2 in flight = 10 s
	if pl.Summary.WallTime != 10*time.Second || !pl.Summary.WallTimeGuess || !pl.Summary.Lanes[0].Guess() {
		t.Errorf("wall %s guess %v", pl.Summary.WallTime, pl.Summary.WallTimeGuess)
	}
}

func TestNewLaneFromConfig(t *testing.T) {
	p := &config.Provider{Name: "gemini", MaxConcurrency: 8}
	m := &config.Model{Name: "gemini-2.5-flash", Category: "small", ContextWindow: 1048576, RPM: 10, RPD: 250,
		InputPerMTok: 0.3, OutputPerMTok: 2.5, Free: true, Encoding: "o200k_base"}
	l := NewLane(p, m)
	if l.String() != "gemini/gemini-2.5-flash" || l.Category != model.Small || l.DailyRequestsLeft != 250 ||
		l.DailyTokensLeft != -1 || l.Concurrency != 8 || !l.Available || l.Encoding != EncO200K || l.Cost(1e6, 2e6) != 0.3+5 {
		t.Errorf("lane = %+v", l)
	}
	if p, err := ParsePrefer("Speed"); err != nil || p != PreferSpeed || p.String() != "speed" {
		t.Errorf("ParsePrefer = %v %v", p, err)
	}
	if _, err := ParsePrefer("fast"); err == nil {
		t.Error("ParsePrefer accepted fast")
	}
}

func BenchmarkPlanMillion(b *testing.B) {
	const n = 1_000_000
	cats := []model.Category{model.Tiny, model.Small, model.Large, model.Reasoning}
	var lanes []*Lane
	for i := range 12 {
		l := lane("p", string(rune('a'+i)), cats[i%4], 32000*(1+i%3), 0.1*float64(1+i), 0.4*float64(1+i))
		l.Encoding = Encoding(i % int(NumEncodings))
		l.Limits = Limits{RPM: 500 * (1 + i%3), TPM: 200000 * (1 + i%2)}
		if i%5 == 0 {
			l.DailyRequestsLeft = 200000
		}
		lanes = append(lanes, l)
	}
	items := make([]Item, n)
	for i := range items {
		items[i] = item(cats[i%4], 50+(i*7919)%40000, 20+i%500)
	}
	for _, prefer := range []Prefer{PreferCost, PreferSpeed} {
		b.Run(prefer.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := NewPlanner(lanes, Options{Prefer: prefer})
				for i := range items {
					p.Add(&items[i])
				}
				_ = p.Summary()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/item")
		})
	}
}
