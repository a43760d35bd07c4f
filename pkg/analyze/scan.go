package analyze

import "strings"

// kind is what a keyword or phrase signals.
type kind uint8

const (
	reasonWeak   kind = iota + 1 // counts 1 toward reasoning: a maths or algorithms term
	reasonStrong                 // counts 2: asks for a proof, a derivation, step-by-step thinking
	complexTask                  // asks for analysis, design, comparison, a long answer
	classifyTask                 // asks for a label or a category
	extractTask                  // asks to pull fields out of a text
	codeLanguage                 // names a programming language or code format: counts 2 toward code
	codeTerm                     // a programming term: counts 1 toward code
)

// The keyword lists. Words are matched whole and lower-cased (ASCII letters and digits; anything else
// separates words, so "step-by-step" and "O(n)" are word sequences).
var keywords = map[kind][]string{
	reasonStrong: {"prove", "disprove", "proves", "proved", "proving", "proof", "proofs", "theorem", "theorems", "lemma",
		"lemmas", "corollary", "derive", "derives", "deriving", "derivation", "puzzle", "puzzles", "riddle",
		"riddles", "induction", "contradiction", "counterexample", "rigorous", "rigorously", "deduce",
		"deduction", "syllogism", "optimal", "optimality", "combinatorics", "combinatorial", "axiom", "axioms",
		"conjecture", "irrational"},
	reasonWeak: {"probability", "probabilities", "integral", "integrate", "derivative", "equation", "equations",
		"inequality", "recurrence", "asymptotic", "minimize", "maximize", "minimum", "maximum", "logic",
		"logical", "paradox", "solve", "algorithm", "algorithms", "invariant", "prime", "primes", "eigenvalue",
		"eigenvalues", "polynomial", "modulo", "divisible", "factorial", "recursion", "frac", "sqrt", "lim",
		"infty", "mathbb"},
	complexTask: {"analyze", "analyse", "analysis", "compare", "contrast", "design", "architecture", "evaluate",
		"critique", "essay", "report", "comprehensive", "detailed", "thorough", "thoroughly", "tradeoffs",
		"implications", "strategy", "justify", "assess", "investigate", "migrate", "migration", "scalable",
		"scalability", "distributed", "concurrency", "security", "optimize", "optimise", "performance"},
	classifyTask: {"classify", "classification", "categorize", "categorise", "categorization", "label",
		"labels", "sentiment", "spam", "tag", "tags"},
	extractTask: {"extract", "extraction", "parse"},
	codeLanguage: {"python", "javascript", "typescript", "golang", "java", "kotlin", "swift", "rust", "sql",
		"bash", "powershell", "php", "ruby", "scala", "haskell", "cpp", "csharp", "html", "css", "react",
		"django", "kubernetes", "dockerfile", "terraform", "regex", "yaml"},
	codeTerm: {"function", "functions", "class", "method", "compile", "compiler", "bug", "bugs", "stacktrace",
		"traceback", "exception", "code", "script", "refactor", "debug", "implement", "implementation",
		"unittest", "api", "endpoint", "variable", "loop", "array", "query", "snippet", "syntax", "segfault",
		"goroutine", "async", "lambda", "struct", "pointer"},
}

// phrases are sequences of two or three words with their signal.
var phrases = map[kind][]string{
	reasonStrong: {"step by step", "think carefully", "chain of thought", "show that", "prove that",
		"time complexity", "space complexity", "big o", "how many ways", "expected value", "by induction",
		"worst case", "lower bound", "upper bound", "dynamic programming", "np hard", "np complete",
		"game theory", "nash equilibrium", "show your work", "logic puzzle", "reason through"},
	reasonWeak:  {"o n", "o log"},
	complexTask: {"trade offs", "pros and cons", "in depth", "step plan", "root cause"},
	classifyTask: {"yes or no", "true or false", "one word", "single word", "which category", "answer only",
		"only the label", "positive or negative"},
	extractTask: {"extract the", "pull out", "only the name", "only the date"},
}

// entry is a vocabulary word: its id (for phrases and for counting each keyword once) and its signal.
type entry struct {
	id   uint16
	kind kind // 0 when the word only occurs in phrases
	text string
}

type phraseEntry struct {
	id   uint16
	kind kind
	text string
}

// maxIDs bounds the vocabulary and phrases together, for the seen bitset.
const maxIDs = 512

// vocab and phraseIndex are built once from the lists above and never modified.
var vocab, phraseIndex = build()

func build() (map[string]entry, map[[3]uint16]phraseEntry) {
	v := map[string]entry{}
	next := uint16(1) // 0 means "not in the vocabulary"
	add := func(w string, k kind) uint16 {
		if e, ok := v[w]; ok {
			if k != 0 && e.kind == 0 {
				e.kind = k
				v[w] = e
			}
			return e.id
		}
		v[w] = entry{id: next, kind: k, text: w}
		next++
		return next - 1
	}
	for k, ws := range keywords {
		for _, w := range ws {
			add(w, k)
		}
	}
	p := map[[3]uint16]phraseEntry{}
	for k, ps := range phrases {
		for _, ph := range ps {
			var key [3]uint16
			for i, w := range strings.Fields(ph) {
				key[i] = add(w, 0)
			}
			p[key] = phraseEntry{kind: k, text: ph}
		}
	}
	for key, e := range p {
		e.id = next
		next++
		p[key] = e
	}
	if next > maxIDs {
		panic("analyze: vocabulary larger than maxIDs") // a programming error in the lists above
	}
	return v, p
}

// scan accumulates the signals of a request's texts.
type scan struct {
	reasoning   int // weighted: strong 2, weak 1, each keyword counted once
	complex     int
	simple      int
	simpleKind  string // "classification" or "extraction", for the Reason
	languages   int
	terms       int
	fences      int // ``` markers
	syntaxLines int // lines that start like code
	symbols     int // ; { } = < > characters
	bytes       int
	seen        [maxIDs / 64]uint64
	reasons     [2]string // the first reasoning keywords, for the Reason
}

// codeScore combines the code signals: a fenced block or a few code-like lines settle it, and naming
// a language plus a programming term does too ("write a Python function").
func (s *scan) codeScore() int {
	// Vocabulary alone (prose about software) counts at most 4; syntax is what makes code heavy.
	n := min(s.syntaxLines, 4) + min(2*s.languages+s.terms, 4)
	if s.fences > 0 {
		n += 3
	}
	if s.bytes >= 80 && s.symbols*20 > s.bytes { // more than 5% of ; { } = < >
		n++
	}
	return n
}

// reasonWords returns the reasoning keywords found, for the Reason.
func (s *scan) reasonWords() string {
	if s.reasons[1] == "" {
		return s.reasons[0]
	}
	return s.reasons[0] + ", " + s.reasons[1]
}

// codeLineStarts are the case-sensitive beginnings (after indentation) of lines that look like code.
var codeLineStarts = [...]string{
	"def ", "func ", "class ", "import ", "from ", "#include", "package ", "public ", "private ", "static ",
	"const ", "let ", "var ", "fn ", "pub ", "impl ", "return ", "if (", "for (", "while (", "}", "print(",
	"console.", "async ", "export ", "interface ", "struct ", "SELECT ", "INSERT ", "UPDATE ", "CREATE ",
	"<?php", "#!/", "//", "/*",
}

// text scans at most limit bytes of t and returns how many it scanned.
func (s *scan) text(t string, limit int) int {
	if len(t) > limit {
		t = t[:limit]
	}
	s.bytes += len(t)
	var word [24]byte
	n := 0
	var prev1, prev2 uint16
	flush := func() {
		var id uint16
		if n <= len(word) {
			if e, ok := vocab[string(word[:n])]; ok {
				id = e.id
				if e.kind != 0 {
					s.hit(e.id, e.kind, e.text)
				}
			}
		}
		if id != 0 && prev1 != 0 {
			if p, ok := phraseIndex[[3]uint16{prev1, id, 0}]; ok {
				s.hit(p.id, p.kind, p.text)
			}
			if prev2 != 0 {
				if p, ok := phraseIndex[[3]uint16{prev2, prev1, id}]; ok {
					s.hit(p.id, p.kind, p.text)
				}
			}
		}
		prev2, prev1, n = prev1, id, 0
	}
	lineStart := true
	for i := 0; i < len(t); i++ {
		c := t[i]
		if lineStart {
			lineStart = false
			j := i
			for j < len(t) && (t[j] == ' ' || t[j] == '\t') {
				j++
			}
			rest := t[j:min(j+10, len(t))]
			for _, p := range codeLineStarts {
				if strings.HasPrefix(rest, p) {
					s.syntaxLines++
					break
				}
			}
		}
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			if n < len(word) {
				word[n] = c
			}
			n++
			continue
		case c >= 'A' && c <= 'Z':
			if n < len(word) {
				word[n] = c + ('a' - 'A')
			}
			n++
			continue
		case c == '\n':
			lineStart = true
		case c == ';' || c == '{' || c == '}' || c == '=' || c == '<' || c == '>':
			s.symbols++
		case c == '`' && strings.HasPrefix(t[i:], "```"):
			s.fences++
			i += 2
		}
		if n > 0 {
			flush()
		}
	}
	if n > 0 {
		flush()
	}
	return len(t)
}

// hit records a keyword or phrase, once per request.
func (s *scan) hit(id uint16, k kind, text string) {
	if s.seen[id/64]&(1<<(id%64)) != 0 {
		return
	}
	s.seen[id/64] |= 1 << (id % 64)
	switch k {
	case reasonStrong, reasonWeak:
		s.reasoning++
		if k == reasonStrong {
			s.reasoning++
		}
		switch {
		case s.reasons[0] == "":
			s.reasons[0] = text
		case s.reasons[1] == "":
			s.reasons[1] = text
		}
	case complexTask:
		s.complex++
	case classifyTask, extractTask:
		s.simple++
		if s.simpleKind == "" {
			s.simpleKind = "classification"
			if k == extractTask {
				s.simpleKind = "extraction"
			}
		}
	case codeLanguage:
		s.languages++
	case codeTerm:
		s.terms++
	}
}
