package analyze

import (
	"math"
	"strconv"
)

// feature indexes the analyser's feature vector. Every feature is scaled to 0..1 so that the learned
// weights are comparable and one odd prompt cannot dominate a score.
type feature uint8

// The features. The first block counts lexicon hits (see lexicon.go): distinct words or phrases of
// each kind, saturating at three. The rest are structure, which needs no vocabulary and works the
// same in every language.
const (
	fProof       feature = iota // asks for a proof or derivation
	fMath                       // maths vocabulary: equation, probability, remainder, speed, …
	fPuzzle                     // logic-puzzle vocabulary: knights, weighings, who owns, order, …
	fPlan                       // planning under constraints: schedule, at most, cannot, assign, …
	fAlgo                       // algorithms: complexity, O(n log n), greedy, counterexample, …
	fWhy                        // asks for the reasoning: step by step, justify, explain why
	fExplain                    // asks for an explanation or advice: why, explain, how does, tips
	fClassify                   // asks for a label: classify, sentiment, spam, positive or negative
	fExtract                    // asks to pull a field out of a text
	fYesNo                      // "yes or no", "true or false"
	fOneWord                    // asks for one word: synonym, plural, "how do you say"
	fGreeting                   // chit-chat: hello, thanks, good morning
	fTranslate                  // translate a text
	fSummarise                  // summarise a text
	fRewrite                    // rewrite, convert, fix, format
	fWrite                      // write something short: poem, slogan, message, tips
	fLongForm                   // long writing or synthesis: essay, report, detailed, comprehensive
	fDesign                     // design, compare, review, refactor, audit
	fBuild                      // build a whole program: implement, complete, tests, endpoints
	fNegation                   // not, never, nicht, не, 不: constraints and puzzles are full of them
	fDataTerms                  // maths, puzzle, planning words and negations in the data part (after a colon or blank line, in quotes)
	fWh                         // the question opens with what/who/where/… (or holds 什么/誰/…)
	fAux                        // the question opens with is/are/does/can/…: a yes/no question
	fQuotedWord                 // quotes a single word: "apple", «chien», 「犬」
	fNumbers                    // how many numbers the instructions hold (a word problem's givens)
	fDataNumbers                // numbers in quotes or after a colon: the data a task is about
	fMathOps                    // = + ^ × √ ≤ next to a number: arithmetic and equations
	fVars                       // single-letter variables and terms like 2x, 4k
	fQuestions                  // question marks
	fSentences                  // sentences in the text
	fBullets                    // list lines: "- ", "* ", "1. ", a list of constraints or items
	fNames                      // capitalised words inside sentences: people and places in a puzzle
	fLength                     // prompt tokens on a log scale, 8 → 0, 8000 → 1
	fVeryShort                  // 30 prompt tokens or fewer
	fLong                       // 1500 prompt tokens or more
	fLongSimple                 // 1000 prompt tokens or more, a simple task (label, extract, summarise), no analysis asked
	fCode                       // code: fences, code-like lines, language and programming terms
	fFence                      // a fenced code block
	fTurns                      // earlier assistant turns, saturating at three
	fTools                      // declares tools
	fMaxSmall                   // max_tokens of 10 or fewer: the caller expects a word or a label
	fMaxLarge                   // max_tokens of 1000 or more: the caller expects a long answer
	fWordCount                  // asks for 500 words or more
	fCJK                        // holds Chinese or Japanese text (their token counts run higher per idea)
	numFeatures
)

// featureNames name the features in explanations and in the generated model, which is checked
// against this list so stale weights are caught.
var featureNames = [numFeatures]string{
	fProof: "proof", fMath: "maths terms", fPuzzle: "puzzle terms", fPlan: "constraints", fAlgo: "algorithm terms",
	fWhy: "asks for the reasoning", fExplain: "explanation", fClassify: "classification", fExtract: "extraction", fYesNo: "yes/no", fOneWord: "one-word answer",
	fGreeting: "chit-chat", fTranslate: "translation", fSummarise: "summary", fRewrite: "rewrite", fWrite: "short writing",
	fLongForm: "long-form", fDesign: "design/review", fBuild: "build a program", fNegation: "negations", fDataTerms: "terms in the data",
	fQuotedWord: "quoted word", fWh: "wh-question", fAux: "yes/no question", fNumbers: "numbers", fDataNumbers: "numbers in the data", fMathOps: "equation", fVars: "variables",
	fQuestions: "questions", fSentences: "sentences", fBullets: "list lines", fNames: "names", fLength: "length",
	fVeryShort: "very short", fLong: "long prompt", fLongSimple: "long text, simple task", fCode: "code", fFence: "code block", fTurns: "earlier turns",
	fTools: "tools", fMaxSmall: "small max_tokens", fMaxLarge: "large max_tokens",
	fWordCount: "word count", fCJK: "CJK text",
}

// vector is a request's features, each in 0..1.
type vector [numFeatures]float64

func sat(n, at int) float64 { return math.Min(float64(n), float64(at)) / float64(at) }

// vector scales the scan's counts into features; inputTokens is the prompt's token count.
func (s *scan) vector(inputTokens, maxTokens int, turns int, tools bool) vector {
	var v vector
	s.inputTokens = inputTokens
	for f := fProof; f <= fNegation; f++ {
		v[f] = sat(int(s.hits[f]), 3)
	}
	// Puzzle words (bridge, river, order, truth) are ordinary words alone; two make a puzzle.
	v[fPuzzle] = sat(max(int(s.hits[fPuzzle])-1, 0), 2)
	v[fDataTerms] = sat(s.dataTerms, 3)
	v[fWh] = b2f(s.whStart || s.hits[fWh] > 0)
	v[fAux] = b2f(s.auxStart)
	v[fQuotedWord] = b2f(s.quotedWord)
	v[fNumbers] = sat(s.numbers, 8)
	v[fDataNumbers] = sat(s.dataNumbers, 8)
	v[fMathOps] = sat(s.mathOps, 4)
	v[fVars] = sat(s.vars, 4)
	v[fQuestions] = sat(s.questions, 3)
	v[fSentences] = sat(s.sentences, 8)
	v[fBullets] = sat(s.bullets, 6)
	v[fNames] = sat(s.names, 6)
	if inputTokens > 8 {
		v[fLength] = math.Min(math.Log(float64(inputTokens)/8)/math.Log(1000), 1)
	}
	v[fVeryShort] = b2f(inputTokens <= 30)
	v[fLong] = b2f(inputTokens >= 1500)
	// An interaction the linear model cannot form itself: a long text is large work when it must be
	// analysed, small work when it only needs a label, a field or a summary.
	simple := s.hits[fClassify]+s.hits[fExtract]+s.hits[fSummarise]+s.hits[fYesNo]+s.hits[fOneWord] > 0
	analysis := s.hits[fDesign]+s.hits[fLongForm]+s.hits[fWhy]+s.hits[fExplain]+s.hits[fBuild] > 0
	v[fLongSimple] = b2f(inputTokens >= 1000 && simple && !analysis)
	v[fCode] = sat(s.codeScore(), 8)
	v[fFence] = b2f(s.fences > 0)
	v[fTurns] = sat(turns, 3)
	v[fTools] = b2f(tools)
	v[fMaxSmall] = b2f(maxTokens > 0 && maxTokens <= 10)
	v[fMaxLarge] = b2f(maxTokens >= 1000)
	v[fWordCount] = b2f(s.wordCount)
	v[fCJK] = b2f(s.cjk > 0)
	return v
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// evidence describes what made feature f fire, for explanations: the first word found, or a count.
func (s *scan) evidence(f feature) string {
	name := featureNames[f]
	switch {
	case f <= fNegation || f == fWh:
		if s.first[f] != "" {
			return name + " (" + s.first[f] + ")"
		}
	case f == fNumbers:
		if s.dataNumbers > 0 {
			return count(s.numbers+s.dataNumbers, "number")
		}
		return count(s.numbers, "number")
	case f == fDataNumbers:
		return count(s.dataNumbers, "number") + " in the data"
	case f == fLength || f == fLong || f == fVeryShort || f == fLongSimple:
		return name + " (" + strconv.Itoa(s.inputTokens) + " tokens)"
	case f == fMathOps:
		return "equation (" + count(s.mathOps, "operator") + ")"
	case f == fQuestions:
		return count(s.questions, "question")
	case f == fSentences:
		return count(s.sentences, "sentence")
	case f == fBullets:
		return count(s.bullets, "list line")
	case f == fNames:
		return count(s.names, "name")
	}
	return name
}

// count writes n and a noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
