// Package analyze profiles a request — how complex it is, whether it asks for reasoning or code, how
// much context it needs — and derives the model category it should go to.
//
// It is a heuristic meant to run on millions of prompts: one pass over at most scanLimit bytes per
// request, no regular expressions, no allocation beyond the Profile, and the same answer every time
// for the same request.
package analyze

import (
	"math"
	"strconv"

	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

// Complexity levels, by Profile.Complexity: below 0.25 simple, below 0.55 moderate, else complex.
const (
	LevelSimple   = "simple"
	LevelModerate = "moderate"
	LevelComplex  = "complex"
)

// Thresholds of the category decision (see Analyze).
const (
	longInput       = 6000 // prompt tokens from which a request is Large whatever it asks
	tinyMaxInput    = 400  // prompt tokens up to which a simple classification or extraction is Tiny
	codeHeavyInput  = 1500 // prompt tokens from which a request with code is Large
	codeHeavyScore  = 6    // code signal from which a request is Large
	reasoningSignal = 2    // reasoning signal from which Profile.Reasoning is set
	strongReasoning = 3    // reasoning signal that makes a request Reasoning whatever its complexity
	reasoningMinCx  = 0.25 // complexity from which a request with Reasoning set is Reasoning
	complexLevel    = 0.55
	simpleLevel     = 0.25
)

// scanLimit bounds the bytes of message text examined per request. Messages are scanned from the last
// to the first, so the final user turn — the task itself — always counts; the length of a longer
// request still counts through its token count.
const scanLimit = 64 << 10

// Profile is what the analyser concludes about one request.
type Profile struct {
	Complexity      float64        // 0 (trivial) to 1 (hard), rounded to 3 decimals
	Level           string         // LevelSimple, LevelModerate or LevelComplex
	Reasoning       bool           // asks for proof, derivation, puzzles, step-by-step or algorithmic analysis
	Code            bool           // contains code or asks for it
	MultiTurn       bool           // holds an earlier exchange: an assistant message or several user messages
	Tools           bool           // declares tools
	RequiredContext int            // prompt tokens plus the output tokens planned for Category
	Category        model.Category // where the request should go
	Reason          string         // one short phrase: why this category
}

// Analyze profiles req, whose prompt is inputTokens long (as counted by pkg/tokens), and picks its
// category, first rule that applies:
//   - the request's own category hint (req.Category) wins;
//   - Reasoning: reasoning keywords (strongly, or with a complexity of at least 0.25);
//   - Large: a long prompt (6000 tokens or more), a complex one (complexity 0.55 or more), or a
//     code-heavy one (much code, or code in a prompt of 1500 tokens or more);
//   - Tiny: a short (400 tokens or less), simple classification, labelling or extraction without code,
//     tools or reasoning;
//   - Small: everything else.
//
// RequiredContext uses tokens.OutputTokens for the chosen category.
func Analyze(req *request.Request, inputTokens int) Profile {
	var s scan
	budget := scanLimit
	users, assistants := 0, 0
	for i := len(req.Messages) - 1; i >= 0; i-- {
		m := &req.Messages[i]
		switch m.Role {
		case "user":
			users++
		case "assistant":
			assistants++
		}
		if budget <= 0 {
			continue
		}
		if m.Content.Parts == nil {
			budget -= s.text(m.Content.Text, budget)
			continue
		}
		for _, p := range m.Content.Parts {
			if budget > 0 && (p.Type == "text" || p.Type == "input_text") {
				budget -= s.text(p.Text, budget)
			}
		}
	}

	p := Profile{
		MultiTurn: assistants > 0 || users > 1,
		Tools:     hasJSON(req.Tools),
		Reasoning: s.reasoning >= reasoningSignal,
	}
	code := s.codeScore()
	p.Code = code >= 3

	// Each signal is saturated to 0..1 and weighted by how far it alone can raise the complexity; they
	// combine like independent probabilities (1 - Π(1 - w·x)), so any strong signal makes a request
	// complex, and weaker ones add up without exceeding 1.
	length := 0.0
	if inputTokens > 40 {
		length = math.Min(math.Log(float64(inputTokens)/40)/math.Log(8000.0/40), 1) // 40 → 0, 8000 → 1
	}
	turns := math.Max(float64(users+assistants-1), 0)
	tools := 0.0
	if p.Tools {
		tools = 1
	}
	rest := 1.0
	for _, sig := range [...]struct{ weight, x float64 }{
		{0.7, length},
		{0.7, math.Min(float64(s.reasoning)/6, 1)},
		{0.5, math.Min(float64(code)/6, 1)},
		{0.65, math.Min(float64(s.complex)/4, 1)},
		{0.2, math.Min(turns/6, 1)},
		{0.2, tools},
	} {
		rest *= 1 - sig.weight*sig.x
	}
	cx := 1 - rest
	if s.simple > 0 && !p.Code && s.reasoning == 0 {
		cx *= 0.6 // an explicitly simple task: classification, labelling, extraction
	}
	p.Complexity = math.Round(math.Min(math.Max(cx, 0), 1)*1000) / 1000
	switch {
	case p.Complexity < simpleLevel:
		p.Level = LevelSimple
	case p.Complexity < complexLevel:
		p.Level = LevelModerate
	default:
		p.Level = LevelComplex
	}

	hint, _ := model.ParseCategory(req.Category)
	switch {
	case hint != model.Unknown:
		p.Category, p.Reason = hint, "category hint in the request"
	case p.Reasoning && (s.reasoning >= strongReasoning || p.Complexity >= reasoningMinCx):
		p.Category, p.Reason = model.Reasoning, "reasoning task ("+s.reasonWords()+")"
	case inputTokens >= longInput:
		p.Category, p.Reason = model.Large, "long prompt ("+strconv.Itoa(inputTokens)+" tokens)"
	case p.Complexity >= complexLevel:
		p.Category, p.Reason = model.Large, "complex request"
	case p.Code && (code >= codeHeavyScore || inputTokens >= codeHeavyInput):
		p.Category, p.Reason = model.Large, "code-heavy request"
	case s.simple > 0 && inputTokens <= tinyMaxInput && !p.Code && !p.Reasoning && !p.Tools && p.Complexity < simpleLevel:
		p.Category, p.Reason = model.Tiny, "short "+s.simpleKind
	case p.Code:
		p.Category, p.Reason = model.Small, "ordinary code question"
	default:
		p.Category, p.Reason = model.Small, "ordinary request"
	}
	p.RequiredContext = inputTokens + tokens.OutputTokens(req, p.Category)
	return p
}

// hasJSON reports whether an optional JSON field holds something other than null or an empty array.
func hasJSON(raw []byte) bool {
	t := trimSpace(raw)
	return len(t) > 0 && string(t) != "null" && string(t) != "[]"
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}
