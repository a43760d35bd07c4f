package analyze

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

var calc = tokens.New()

func user(texts ...string) *request.Request {
	r := &request.Request{ID: "t"}
	for i, t := range texts {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		r.Messages = append(r.Messages, request.Message{Role: role, Content: request.Content{Text: t}})
	}
	return r
}

func withSystem(system string, r *request.Request) *request.Request {
	r.Messages = append([]request.Message{{Role: "system", Content: request.Content{Text: system}}}, r.Messages...)
	return r
}

func analyze(r *request.Request) Profile {
	n, _ := calc.Input(r, tokens.O200K)
	return Analyze(r, n)
}

const goFile = "```go\npackage cache\n\nimport (\n\t\"container/list\"\n\t\"sync\"\n)\n\n" +
	"// LRU is a fixed-size cache.\ntype LRU struct {\n\tmu    sync.Mutex\n\tcap   int\n\tll    *list.List\n\titems map[string]*list.Element\n}\n\n" +
	"func (c *LRU) Get(k string) (any, bool) {\n\tc.mu.Lock()\n\tdefer c.mu.Unlock()\n\tif e, ok := c.items[k]; ok {\n\t\tc.ll.MoveToFront(e)\n\t\treturn e.Value, true\n\t}\n\treturn nil, false\n}\n```\n"

func TestAnalyzeCategories(t *testing.T) {
	longDoc := strings.Repeat("The committee reviewed the quarterly figures and noted that revenue grew in every region except the north, where supply problems delayed two large orders. ", 300)
	tests := []struct {
		name string
		req  *request.Request
		want model.Category
	}{
		// Tiny: short classification, labelling, extraction.
		{"sentiment", user(`Classify the sentiment of this review as positive, negative or neutral: "The battery died after two days."`), model.Tiny},
		{"spam", user(`Is this message spam? Answer yes or no. "WINNER!! Claim your free cruise now"`), model.Tiny},
		{"extract", user("Extract the invoice number and the due date from: Invoice INV-2291, due 14 March 2025, total €1,240."), model.Tiny},
		{"label with system", withSystem("You label support tickets with one of: billing, bug, feature_request, other. Reply with the label only.",
			user("I was charged twice for my March subscription.")), model.Tiny},
		{"tag language", user("Tag the language of this sentence with its ISO code: 'Wo ist der Bahnhof?'"), model.Tiny},

		// Small: ordinary questions, short writing, simple code questions.
		{"capital", user("What is the capital of Australia, and why isn't it Sydney?"), model.Small},
		{"summary", user("Summarise this paragraph in two sentences: The city council met on Tuesday to discuss the new bike lanes. Residents were divided: shop owners worried about parking, while cyclists welcomed safer routes. The council postponed the vote to next month."), model.Small},
		{"email", user("Write a polite email to my landlord asking to fix the heating before the weekend."), model.Small},
		{"python function", user("Write a Python function that reverses a string."), model.Small},
		{"translate", user("Translate to French: The meeting has been moved to Thursday at 3pm."), model.Small},
		{"few-shot chat", user("Hi! Can you recommend a book?", "Sure — what genres do you like?", "Mostly science fiction, something recent."), model.Small},
		{"long sentiment is not tiny", user("Classify the sentiment of each paragraph: " + strings.Repeat("The service was slow but the food was excellent and the staff apologised. ", 40)), model.Small},

		// Large: complex, long, or code-heavy.
		{"design", user("Design a multi-region architecture for a payments service. Compare active-active and active-passive, analyse the trade-offs for consistency, latency and cost, and justify your recommendation with a migration strategy and security considerations."), model.Large},
		{"long document", user("Summarise the key points of this report:\n" + longDoc), model.Large},
		{"code review", user("Review this Go code for concurrency bugs and refactor it to support TTL expiry:\n" + goFile + goFile), model.Large},

		// Reasoning.
		{"primes", user("Prove that there are infinitely many primes."), model.Reasoning},
		{"sqrt2", user("Show that the square root of 2 is irrational. Be rigorous."), model.Reasoning},
		{"puzzle", user("Solve this logic puzzle step by step: three boxes are labelled apples, oranges and mixed, and every label is wrong. You may draw one fruit from one box. Which box do you draw from, and how do you relabel all three?"), model.Reasoning},
		{"algorithm", user("Give an algorithm to find the longest increasing subsequence, derive its time complexity and argue it is optimal."), model.Reasoning},
		{"probability", user("Two dice are rolled. What is the expected value of the maximum of the two, and what is the probability that it is at least 5? Think step by step."), model.Reasoning},

		// Hints win.
		{"hint large", func() *request.Request { r := user("Classify: spam or not? 'hello'"); r.Category = "large"; return r }(), model.Large},
		{"hint tiny", func() *request.Request { r := user("Prove Fermat's last theorem."); r.Category = "Tiny"; return r }(), model.Tiny},
	}
	for _, tt := range tests {
		p := analyze(tt.req)
		if p.Category != tt.want {
			t.Errorf("%s: category %v (complexity %.3f, %s), want %v", tt.name, p.Category, p.Complexity, p.Reason, tt.want)
		}
		if p.Reason == "" || strings.Contains(p.Reason, "\n") {
			t.Errorf("%s: reason %q", tt.name, p.Reason)
		}
		if p.Complexity < 0 || p.Complexity > 1 {
			t.Errorf("%s: complexity %v out of range", tt.name, p.Complexity)
		}
	}
}

func TestAnalyzeFlags(t *testing.T) {
	p := analyze(user("Prove that there are infinitely many primes."))
	if !p.Reasoning || p.Code || p.MultiTurn || p.Tools {
		t.Errorf("primes: %+v", p)
	}
	if !strings.Contains(p.Reason, "prove") {
		t.Errorf("primes: reason %q does not name the keyword", p.Reason)
	}

	p = analyze(user("What does this print?\n" + goFile))
	if !p.Code || p.Reasoning {
		t.Errorf("code: %+v", p)
	}

	p = analyze(user("Hello", "Hi, how can I help?", "What's the weather like on Mars?"))
	if !p.MultiTurn {
		t.Errorf("three turns not multi-turn: %+v", p)
	}

	r := user("What's the weather in Paris?")
	r.Tools = json.RawMessage(`[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`)
	if p = analyze(r); !p.Tools || p.Category == model.Tiny {
		t.Errorf("tools: %+v", p)
	}
	r.Tools = json.RawMessage(` null `)
	if p = analyze(r); p.Tools {
		t.Errorf("null tools counted: %+v", p)
	}

	// Words are matched whole: "improve" and "approved" do not contain the keyword "prove".
	if p = analyze(user("Please improve this approved paragraph about provenance.")); p.Reasoning {
		t.Errorf("substring matched as a keyword: %+v", p)
	}
}

func TestAnalyzeLevelsAndContext(t *testing.T) {
	simple := analyze(user("Label this as spam or ham: 'Meeting at 3?'"))
	complexP := analyze(user("Design a distributed architecture for a global chat service; compare designs, analyse the trade-offs in depth and justify a migration strategy.\n" + strings.Repeat("Constraint: latency under 100 ms in every region. ", 200)))
	if simple.Level != LevelSimple || complexP.Level != LevelComplex {
		t.Errorf("levels: simple %q (%.3f), complex %q (%.3f)", simple.Level, simple.Complexity, complexP.Level, complexP.Complexity)
	}
	if simple.Complexity >= complexP.Complexity {
		t.Errorf("complexity not ordered: %v >= %v", simple.Complexity, complexP.Complexity)
	}

	// RequiredContext is the prompt plus the output planned for the category, or max_tokens.
	r := user("Prove that there are infinitely many primes.")
	in, _ := calc.Input(r, tokens.O200K)
	p := Analyze(r, in)
	if want := in + tokens.OutputTokens(r, p.Category); p.RequiredContext != want {
		t.Errorf("required context %d, want %d", p.RequiredContext, want)
	}
	r.MaxTokens = 100
	if p = Analyze(r, in); p.RequiredContext != in+100 {
		t.Errorf("with max_tokens 100: required context %d, want %d", p.RequiredContext, in+100)
	}

	// Long input alone makes a request Large, whatever it asks.
	if p = Analyze(user("Classify this."), 20000); p.Category != model.Large || !strings.Contains(p.Reason, "20000") {
		t.Errorf("20000-token prompt: %v (%s)", p.Category, p.Reason)
	}
}

func TestAnalyzeDeterministicAndBounded(t *testing.T) {
	r := withSystem("You are a careful mathematician.", user("Derive the closed form of the recurrence T(n) = 2T(n/2) + n and prove it by induction."))
	first := analyze(r)
	for range 20 {
		if p := analyze(r); p != first {
			t.Fatalf("not deterministic: %+v then %+v", first, p)
		}
	}
	// Text beyond the scan limit is not examined: keywords at the end of a huge first message are
	// ignored, while the final user turn is always scanned.
	huge := strings.Repeat("lorem ", scanLimit/6+1) + " prove theorem lemma"
	r = user(huge, "ok", "Label this: 'great product'")
	if p := Analyze(r, 100); p.Reasoning {
		t.Errorf("keywords beyond the scan limit were counted: %+v", p)
	}
	r = user("Label this: 'great product'", "ok", "Prove that 17 is prime. "+strings.Repeat("lorem ", scanLimit/6+1))
	if p := Analyze(r, 100); !p.Reasoning {
		t.Errorf("the final turn was not scanned: %+v", p)
	}
}

func BenchmarkAnalyze(b *testing.B) {
	reqs := []*request.Request{
		withSystem("You label support tickets with one of: billing, bug, feature_request, other. Reply with the label only.", user("I was charged twice for my March subscription.")),
		user("Prove that there are infinitely many primes. Think step by step."),
		user("Review this Go code for concurrency bugs:\n" + goFile),
		user("Summarise this paragraph in two sentences: " + strings.Repeat("The city council met on Tuesday to discuss the new bike lanes. ", 10)),
	}
	bytes := 0
	for _, r := range reqs {
		for _, m := range r.Messages {
			bytes += len(m.Content.Text)
		}
	}
	b.SetBytes(int64(bytes / len(reqs)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		Analyze(reqs[i%len(reqs)], 200)
		i++
	}
}

// BenchmarkAnalyzeShort measures issue 13's target, analysis of short prompts on one core (run with
// -cpu 1): prompts/s by the wall clock, and prompts per second of CPU time, which a loaded machine
// does not distort. The prompts mix the corpus's kinds and languages.
func BenchmarkAnalyzeShort(b *testing.B) {
	texts := []string{
		"What is the capital of Canada?",
		"Is a tomato a fruit? Answer yes or no.",
		"Translate \"apple\" into Spanish.",
		"Hallo, wie geht's?",
		"Classify the sentiment of this review as positive, negative or neutral: \"The battery died after two days.\"",
		"Prove that the sum of the first n odd numbers is n^2.",
		"A tank is filled by pipe A in 6 hours and by pipe B in 4 hours. How long with both open?",
		"Résume ce texte en une phrase : La mairie ferme la piscine pendant trois mois pour des travaux.",
		"请判断这条评论的情感是正面还是负面：“这家餐厅的服务太差了。”",
		"Write a Python function that checks whether a string is a palindrome.",
		"Сколько минут в одном часе?",
		"半径5cmの円に内接する正方形の面積を求めなさい。",
	}
	reqs := make([]*request.Request, len(texts))
	toks := make([]int, len(texts))
	for i, t := range texts {
		reqs[i] = user(t)
		toks[i], _ = calc.Input(reqs[i], tokens.O200K)
	}
	b.ReportAllocs()
	i := 0
	cpu0 := processCPU()
	for b.Loop() {
		Analyze(reqs[i%len(reqs)], toks[i%len(reqs)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "prompts/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "prompts/cpu-s")
	}
}

// TestModelMatchesFeatures fails when the features changed without `go generate ./pkg/analyze`:
// the shipped weights would then score the wrong features.
func TestModelMatchesFeatures(t *testing.T) {
	if len(trained.features) != int(numFeatures) {
		t.Fatalf("model_gen.go has %d features, the analyser %d: run go generate ./pkg/analyze", len(trained.features), numFeatures)
	}
	for i, name := range trained.features {
		if name != featureNames[i] {
			t.Fatalf("model_gen.go feature %d is %q, the analyser's is %q: run go generate ./pkg/analyze", i, name, featureNames[i])
		}
	}
	for c, w := range trained.weights {
		if len(w) != int(numFeatures) {
			t.Fatalf("model_gen.go: %v has %d weights, want %d", classOf(c), len(w), numFeatures)
		}
	}
}

// TestAnalyzeExplains checks that the Reason names the category and the signals that decided it.
func TestAnalyzeExplains(t *testing.T) {
	tests := []struct {
		req  *request.Request
		want model.Category
		has  []string // substrings of the Reason
	}{
		{user("Beweise, dass die Summe zweier ungerader Zahlen immer gerade ist."), model.Reasoning, []string{"reasoning: ", "proof (beweise)"}},
		{user("Solve for x: 3x + 7 = 2x - 5 + 4(x - 1)."), model.Reasoning, []string{"reasoning: ", "variables"}},
		{user("こんにちは！"), model.Tiny, []string{"tiny: ", "very short"}},
		{user("Comment dit-on « chien » en allemand ?"), model.Tiny, []string{"tiny: "}},
		{user("Is 91 divisible by 7? Answer yes or no and explain why."), model.Reasoning, nil},
		{withSystem("Reply with one word: positive, negative or neutral.", user("Arrived early, works great.")), model.Tiny, []string{"tiny: "}},
	}
	for _, tt := range tests {
		p := analyze(tt.req)
		text := tt.req.Messages[len(tt.req.Messages)-1].Content.Text
		if p.Category != tt.want {
			t.Errorf("%q: %v (%s), want %v", text, p.Category, p.Reason, tt.want)
			continue
		}
		for _, h := range tt.has {
			if !strings.Contains(p.Reason, h) {
				t.Errorf("%q: reason %q does not contain %q", text, p.Reason, h)
			}
		}
	}
	// A reasoning prompt the model might rank tiny is vetoed by direct evidence, and the Reason says so.
	s := &scan{}
	s.hits[fProof] = 1
	if f, ok := s.reasoningEvidence(); !ok || f != fProof {
		t.Errorf("a proof is not reasoning evidence: %v %v", f, ok)
	}
	if _, ok := (&scan{structure: structure{numbers: 3, dataNumbers: 2}}).reasoningEvidence(); ok {
		t.Error("five numbers alone vetoed tiny")
	}
}
