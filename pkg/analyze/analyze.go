// Package analyze profiles a request — how complex it is, whether it asks for reasoning or code, how
// much context it needs — and derives the model category it should go to.
//
// # How a category is chosen
//
// One pass over the request's text (at most scanLimit bytes, the final user turn first) measures
// about forty features, each scaled to 0..1 (features.go):
//   - structure of the final user turn, the same in every language: numbers, operators next to
//     numbers (equations), one-letter variables, question marks, sentences, list lines (constraint
//     lists), names inside sentences, a quoted single word; numbers in the data part (in quotes, after
//     a colon or a blank line) count apart from those of the instruction; code fences, code-like
//     lines and the prompt's length in tokens;
//   - the conversation: earlier assistant turns (whose words are not instructions), the opening of
//     the system prompt (only what it says about the task and the answer's form: "you label…",
//     "reply with one word"), tools, and the caller's max_tokens (10 or fewer: a label is expected;
//     1000 or more: a long answer);
//   - what the prompt asks for, from a small lexicon of instruction verbs and task words in English,
//     German, French, Spanish and Russian, and entries for Chinese and Japanese (lexicon.go): prove,
//     solve, schedule, classify, extract, translate, summarise, write, explain, design, "yes or no",
//     "how do you say", greetings, and the question's first word (what/who… or is/does…). In a long
//     text only the first and last paragraphs are read for them: the rest is data.

// A multinomial logistic regression (model.go) turns the features into one probability per category.
// Its weights are not hand-set: `go generate` runs ./internal/train, which fits them on the tune
// split of the labelled corpus in testdata/analyze (345 prompts in seven languages) and writes
// model_gen.go. The model replaced hand-set keyword rules because it is measurably better on the
// held-out split (210 prompts, never trained on; TestHeldOutCorpus prints the confusion matrix):
//
//	                      accuracy   reasoning recall   trivial → tiny   reasoning → tiny
//	keyword rules (before)   32.9%               7.0%             3.3%                  0
//	this model               91.9%              94.7%            96.7%                  0
//
// A linear model cannot combine features by itself, so the few combinations that matter are
// features of their own (fLongSimple: a long text with a simple task).
//
// A few rules stay on top of the model, because they encode costs the corpus cannot teach:
//   - the request's own category hint (req.Category) wins;
//   - tiny is never chosen for a prompt over tinyMaxInput tokens, one that declares tools, one the
//     model gives a reasoning probability of reasoningVeto or more while it shows a reasoning signal
//     (below), or one with direct evidence of
//     reasoning (scan.reasoningEvidence: a proof, an algorithm, an equation, a request for the
//     steps): sending a reasoning prompt to a tiny model wastes the call, sending a tiny one to a
//     small model costs a little;
//   - reasoning is never chosen without a reasoning signal (scan.reasoningSignal: a word of the
//     maths, proof, puzzle, planning or algorithm lexicon, an operator, a variable, two numbers);
//   - a prompt of longInput tokens or more is at least large.
//
// Profile.Reason names the signals that decided: the features that raise the chosen category's score
// the most over the runner-up's (`llmbatch select --explain` prints it).
//
// Analysis is meant to run on millions of prompts: no regular expressions, allocation only to build
// the Reason, and the same answer every time for the same request.
package analyze

//go:generate go run ./internal/train -tune ../../testdata/analyze/tune.jsonl -o model_gen.go

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

// Thresholds of the rules on top of the model (see the package doc).
const (
	longInput     = 6000 // prompt tokens from which a request is at least Large
	tinyMaxInput  = 600  // prompt tokens above which a request is never Tiny
	reasoningVeto = 0.15 // reasoning probability from which a request is never Tiny
	complexLevel  = 0.55
	simpleLevel   = 0.25
)

// scanLimit bounds the bytes of message text examined per request. Messages are scanned from the last
// to the first, so the final user turn — the task itself — always counts; the length of a longer
// request still counts through its token count.
const scanLimit = 64 << 10

// Profile is what the analyser concludes about one request.
type Profile struct {
	Complexity      float64        // 0 (trivial) to 1 (hard): the model's expected category, tiny 0 … reasoning 1; 3 decimals
	Level           string         // LevelSimple, LevelModerate or LevelComplex
	Reasoning       bool           // the model ranks reasoning first or gives it a probability of one half or more
	Code            bool           // contains code or asks for it
	MultiTurn       bool           // holds an earlier exchange: an assistant message or several user messages
	Tools           bool           // declares tools
	RequiredContext int            // prompt tokens plus the output tokens planned for Category
	Category        model.Category // where the request should go
	Reason          string         // one line: the category and the signals that decided it
}

// extract scans a request into s and returns its feature vector and its user and assistant turns.
func extract(s *scan, req *request.Request, inputTokens int) (vector, int, int) {
	budget := scanLimit
	users, assistants := 0, 0
	finalUser := -1
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			finalUser = i
			break
		}
	}
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
		s.assistant = m.Role == "assistant"
		s.system = m.Role == "system" || m.Role == "developer"
		kept := s.structure
		if m.Content.Parts == nil {
			budget -= s.text(m.Content.Text, budget, i == finalUser)
		} else {
			first := i == finalUser
			for _, p := range m.Content.Parts {
				if budget > 0 && (p.Type == "text" || p.Type == "input_text") {
					budget -= s.text(p.Text, budget, first)
					first = false
				}
			}
		}
		if i != finalUser {
			s.structure = kept
		}
	}
	v := s.vector(inputTokens, req.MaxTokens, assistants, hasJSON(req.Tools))
	return v, users, assistants
}

// Features returns the feature vector the model scores for a request whose prompt is inputTokens
// long, in the order of FeatureNames. It exists for the training step (go generate).
func Features(req *request.Request, inputTokens int) []float64 {
	var s scan
	v, _, _ := extract(&s, req, inputTokens)
	return v[:]
}

// FeatureNames returns the names of the features, in the order Features returns them.
func FeatureNames() []string { return featureNames[:] }

// Analyze profiles req, whose prompt is inputTokens long (as counted by pkg/tokens), and picks its
// category as the package doc describes. RequiredContext uses tokens.OutputTokens for the category.
func Analyze(req *request.Request, inputTokens int) Profile {
	var sc0 scan // on the stack: Analyze allocates only the Reason
	s := &sc0
	v, users, assistants := extract(s, req, inputTokens)
	p := Profile{
		MultiTurn: assistants > 0 || users > 1,
		Tools:     v[fTools] > 0,
		Code:      s.codeScore() >= 3,
	}
	sc := trained.scores(&v)
	prob := softmax(sc)
	p.Reasoning = prob[model.Reasoning-1] >= 0.5 || classOf(rank1(sc)) == model.Reasoning
	cx := (prob[1] + 2*prob[2] + 3*prob[3]) / 3
	p.Complexity = math.Round(math.Min(math.Max(cx, 0), 1)*1000) / 1000
	switch {
	case p.Complexity < simpleLevel:
		p.Level = LevelSimple
	case p.Complexity < complexLevel:
		p.Level = LevelModerate
	default:
		p.Level = LevelComplex
	}

	// The rules on top of the model exclude categories; the best remaining one is chosen.
	var skip [numClasses]bool
	note := ""
	tiny, reasoning := int(model.Tiny-1), int(model.Reasoning-1)
	best, second := rank(sc, skip)
	if best == reasoning && !s.reasoningSignal() {
		skip[reasoning], note = true, "; not reasoning: no sign of it"
		best, second = rank(sc, skip)
	}
	if best == tiny {
		switch {
		case inputTokens > tinyMaxInput:
			note = "; not tiny: " + strconv.Itoa(inputTokens) + " tokens"
		case p.Tools:
			note = "; not tiny: declares tools"
		case prob[reasoning] >= reasoningVeto && s.reasoningSignal():
			note = "; not tiny: reasoning likely"
		default:
			if f, ok := s.reasoningEvidence(); ok {
				note = "; not tiny: " + s.evidence(f)
			}
		}
		if note != "" {
			skip[tiny] = true
			best, second = rank(sc, skip)
		}
	}
	p.Category = classOf(best)

	hint, _ := model.ParseCategory(req.Category)
	switch {
	case hint != model.Unknown:
		p.Category, p.Reason = hint, "category hint in the request"
	case inputTokens >= longInput && p.Category < model.Large:
		p.Category, p.Reason = model.Large, "long prompt ("+strconv.Itoa(inputTokens)+" tokens)"
	default:
		p.Reason = p.Category.String() + ": " + trained.signals(s, &v, best, second) + note
	}
	p.RequiredContext = inputTokens + tokens.OutputTokens(req, p.Category)
	return p
}

// reasoningSignal reports whether anything in the prompt points at reasoning: without one the model's
// reasoning score is an extrapolation (say, a long text with no instruction the lexicon knows), and
// the reasoning category, the dearest, is not chosen.
func (s *scan) reasoningSignal() bool {
	for _, f := range [...]feature{fProof, fMath, fPuzzle, fPlan, fAlgo, fWhy} {
		if s.hits[f] > 0 {
			return true
		}
	}
	return s.mathOps > 0 || s.vars > 0 || s.numbers >= 2
}

// reasoningEvidence reports the first direct sign that a prompt needs reasoning, whatever the model
// says: it vetoes Tiny (issue 13: no reasoning prompt may be scored tiny).
func (s *scan) reasoningEvidence() (feature, bool) {
	switch {
	case s.hits[fProof] > 0:
		return fProof, true
	case s.hits[fAlgo] > 0:
		return fAlgo, true
	case s.hits[fWhy] > 0:
		return fWhy, true
	case s.mathOps > 0:
		return fMathOps, true
	case s.hits[fMath] >= 2:
		return fMath, true
	case s.hits[fPlan] >= 2:
		return fPlan, true
	case s.hits[fPuzzle] >= 2:
		return fPuzzle, true
	case s.numbers+s.dataNumbers >= 8:
		// A word, a label or a field does not come out of eight numbers: they are a problem's givens
		// (or data to work through, which is at least small).
		return fNumbers, true
	}
	return 0, false
}

func rank1(sc [numClasses]float64) int {
	best, _ := rank(sc, [numClasses]bool{})
	return best
}

// rank returns the indexes of the highest and second-highest scores, leaving out the skipped ones.
func rank(sc [numClasses]float64, skip [numClasses]bool) (best, second int) {
	best, second = -1, -1
	for c := range sc {
		switch {
		case skip[c]:
		case best < 0 || sc[c] > sc[best]:
			best, second = c, best
		case second < 0 || sc[c] > sc[second]:
			second = c
		}
	}
	if second < 0 {
		second = best
	}
	return best, second
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
