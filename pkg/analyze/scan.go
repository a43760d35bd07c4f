package analyze

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kinds of vocabulary entries beyond the lexicon's features: programming vocabulary feeds the code
// score rather than a feature of its own.
const (
	kindCodeLanguage uint8 = 200 + iota // names a programming language or code format: counts 2 toward code
	kindCodeTerm                        // a programming term: counts 1 toward code
	kindNone         uint8 = 255        // a word that only occurs inside phrases
)

var codeWords = map[uint8][]string{
	kindCodeLanguage: {"python", "javascript", "typescript", "golang", "java", "kotlin", "swift", "rust", "sql",
		"bash", "powershell", "php", "ruby", "scala", "haskell", "cpp", "csharp", "html", "css", "react",
		"django", "kubernetes", "dockerfile", "terraform", "regex", "yaml", "json", "git", "linux", "node", "js"},
	kindCodeTerm: {"function", "functions", "class", "method", "compile", "compiler", "bug", "bugs", "stacktrace",
		"traceback", "exception", "code", "script", "debug", "unittest", "api", "endpoint",
		"variable", "loop", "array", "query", "snippet", "syntax", "segfault", "goroutine", "async", "lambda",
		"struct", "pointer", "dict", "list comprehension", "commit", "branch", "funktion", "fonction", "función",
		"функцию", "функция"},
}

// entry is a vocabulary word: its id (for phrases and to count each word once) and its kind (a
// feature, a code kind, or kindNone).
type entry struct {
	id   uint16
	kind uint8
	text string
}

// maxIDs bounds the vocabulary, phrases and CJK entries together, for the seen bitset.
const maxIDs = 2048

// cjkEntry is a Chinese or Japanese lexicon entry, matched as a substring.
type cjkEntry struct {
	id   uint16
	kind uint8
	text string
}

// lex is the compiled lexicon, built once and never modified.
type lex struct {
	words   map[string]entry
	phrases map[[3]uint16]entry
	cjk     map[rune][]cjkEntry // by first rune
	wh, aux map[string]bool
}

var vocab = buildLex()

// splitWords splits an entry the way the scanner splits text.
func splitWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func buildLex() *lex {
	l := &lex{words: map[string]entry{}, phrases: map[[3]uint16]entry{}, cjk: map[rune][]cjkEntry{},
		wh: map[string]bool{}, aux: map[string]bool{}}
	next := uint16(1) // 0 means "not in the vocabulary"
	add := func(w string, k uint8) uint16 {
		if e, ok := l.words[w]; ok {
			if k != kindNone {
				if e.kind != kindNone && e.kind != k {
					panic("analyze: lexicon word " + w + " has two kinds") // a programming error in lexicon.go
				}
				e.kind = k
				l.words[w] = e
			}
			return e.id
		}
		l.words[w] = entry{id: next, kind: k, text: w}
		next++
		return next - 1
	}
	addEntry := func(s string, k uint8) {
		ws := splitWords(s)
		switch {
		case len(ws) == 1:
			add(ws[0], k)
		case len(ws) <= 3:
			var key [3]uint16
			for i, w := range ws {
				key[i] = add(w, kindNone)
			}
			if e, ok := l.phrases[key]; ok && e.kind != k {
				panic("analyze: lexicon phrase " + s + " has two kinds")
			}
			l.phrases[key] = entry{kind: k, text: strings.ToLower(s)} // as written, for explanations
		default:
			panic("analyze: lexicon entry " + s + " has more than three words")
		}
	}
	// Single words first, so a word listed alone keeps its kind when it also occurs in a phrase.
	for pass := 0; pass < 2; pass++ {
		for f := feature(0); f < numFeatures; f++ {
			for _, s := range lexicon[f] {
				if (len(splitWords(s)) == 1) == (pass == 0) {
					addEntry(s, uint8(f))
				}
			}
		}
		for _, k := range []uint8{kindCodeLanguage, kindCodeTerm} {
			for _, s := range codeWords[k] {
				if (len(splitWords(s)) == 1) == (pass == 0) {
					addEntry(s, k)
				}
			}
		}
	}
	// Phrase ids after the words: the keys were fixed above, ids are only for counting once.
	phraseID := func(s string) {
		ws := splitWords(s)
		if len(ws) < 2 {
			return
		}
		var key [3]uint16
		for i, w := range ws {
			key[i] = l.words[w].id
		}
		if e := l.phrases[key]; e.id == 0 {
			e.id = next
			next++
			l.phrases[key] = e
		}
	}
	for f := feature(0); f < numFeatures; f++ { // in a fixed order, so ids do not depend on map order
		for _, s := range lexicon[f] {
			phraseID(s)
		}
	}
	for _, k := range []uint8{kindCodeLanguage, kindCodeTerm} {
		for _, s := range codeWords[k] {
			phraseID(s)
		}
	}
	for f := feature(0); f < numFeatures; f++ {
		for _, s := range cjkLexicon[f] {
			r, _ := utf8.DecodeRuneInString(s)
			l.cjk[r] = append(l.cjk[r], cjkEntry{id: next, kind: uint8(f), text: s})
			next++
		}
	}
	for _, w := range whWords {
		l.wh[w] = true
	}
	for _, w := range auxWords {
		l.aux[w] = true
	}
	if next > maxIDs {
		panic("analyze: lexicon larger than maxIDs") // a programming error in lexicon.go
	}
	return l
}

// instructionWindow bounds the instruction read at each end of a long text. A long text is mostly
// data — a report, a log, a transcript — whose words say nothing about the task, while the instruction
// comes before or after it; numbers, names and code are still counted everywhere.
const instructionWindow = 1500

// instructions returns where the instruction words of t may be: before headEnd and from tailStart.
// A text of up to two windows is all instruction. A longer one contributes its first and last
// paragraph (split at a blank line, else at a line break), each at most a window long.
func instructions(t string) (headEnd, tailStart int) {
	if len(t) <= 2*instructionWindow {
		return len(t), len(t)
	}
	headEnd = strings.Index(t, "\n\n")
	if headEnd < 0 {
		headEnd = strings.IndexByte(t, '\n')
	}
	if headEnd < 0 || headEnd > instructionWindow {
		headEnd = instructionWindow
	}
	tailStart = strings.LastIndex(t, "\n\n") + 2
	if tailStart < 2 {
		tailStart = strings.LastIndexByte(t, '\n') + 1
	}
	if tailStart <= 0 || len(t)-tailStart > instructionWindow {
		tailStart = len(t) - instructionWindow
	}
	return headEnd, tailStart
}

// structure is what the analyser counts in the task itself, the final user turn: a system prompt's
// policy or an earlier turn's numbers and names say little about what is asked now.
type structure struct {
	numbers, mathOps, vars int
	dataNumbers            int // numbers in quotes, after "label: " or a blank line: the data a task is about
	questions, sentences   int
	bullets, names         int
	wordCount              bool // "500 words" or more asked for
	quotedWord             bool // a single word in quotes
}

// scan accumulates the signals of a request's texts.
type scan struct {
	hits  [numFeatures]uint8  // distinct lexicon entries per feature
	first [numFeatures]string // the first entry found per feature, for explanations
	seen  [maxIDs / 64]uint64

	languages, terms int // programming vocabulary
	fences           int // ``` markers
	syntaxLines      int // lines that start like code
	symbols          int // ; { } = < > characters
	bytes            int

	structure       // of the final user turn only
	inputTokens int // the prompt's token count, for explanations
	cjk         int // Chinese and Japanese characters

	// assistant marks an earlier assistant turn: its words are the model's, not instructions, so
	// they feed no lexicon feature (code and structure still count).
	assistant bool
	// inData marks a word in the data part of the final turn (after a colon or a blank line, or in
	// quotes): maths, puzzle and planning words there describe the data, and count apart (dataTerms).
	inData    bool
	dataTerms int
	// pos is the byte offset in the current text of the word being looked up.
	pos int
	// inFence marks text inside a ``` fence.
	inFence bool
	// system marks a system or developer prompt: only what it says about the task and the answer's
	// form counts (systemFeature), not the words of the policy it states.
	system bool
	// final marks the final user turn: a greeting counts only there (a conversation that opened
	// with "hi" is not chit-chat any more).
	final bool

	// Per-text state.
	firstWord         bool // the next word is the first of the final user turn
	whStart, auxStart bool
	lastNumber        int // value of the last number, for "1,500 words"
	sinceNumber       int // words since that number
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

// codeLineStarts are the case-sensitive beginnings (after indentation) of lines that look like code.
var codeLineStarts = [...]string{
	"def ", "func ", "class ", "import ", "from ", "#include", "package ", "public ", "private ", "static ",
	"const ", "let ", "var ", "fn ", "pub ", "impl ", "return ", "if (", "for (", "while (", "}", "print(",
	"console.", "async ", "export ", "interface ", "struct ", "SELECT ", "INSERT ", "UPDATE ", "CREATE ",
	"<?php", "#!/", "//", "/*",
}

// isCJK reports whether r is a Chinese, Japanese or Korean character or CJK punctuation: such text
// has no spaces between words, so it separates words and is matched by substring instead.
func isCJK(r rune) bool {
	return r >= 0x2E80 && r <= 0x9FFF || r >= 0xAC00 && r <= 0xD7AF || r >= 0xF900 && r <= 0xFAFF || r >= 0xFF00 && r <= 0xFFEF
}

// isMathOp reports whether c is an arithmetic or comparison operator counted next to a number.
func isMathOp(r rune) bool {
	switch r {
	case '=', '+', '^', '×', '÷', '√', '²', '³', '≤', '≥', '·', '≠', '±':
		return true
	}
	return false
}

// isVariable reports whether a lower-cased word reads as a maths variable: one letter that is not an
// English or Romance article or the tail of a contraction (a, i, s, t, d, l, m, y, o, e), or a short
// coefficient and variable such as 2x or 4k (not 18h or 5g).
func isVariable(w []byte) bool {
	if len(w) == 1 {
		c := w[0]
		return c >= 'b' && c <= 'z' && !strings.ContainsRune("dilmostey", rune(c))
	}
	if len(w) > 3 {
		return false
	}
	digits, letters := 0, 0
	for _, c := range w {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z':
			letters++
		default:
			return false
		}
	}
	return digits > 0 && letters == 1 && strings.ContainsRune("abcknxyz", rune(w[len(w)-1])) && w[0] <= '9'
}

// text scans at most limit bytes of t and returns how many it scanned. final marks the final user
// turn, whose first word says what kind of question it is.
func (s *scan) text(t string, limit int, final bool) int {
	if len(t) > limit {
		t = t[:limit]
	}
	s.bytes += len(t)
	s.firstWord, s.final = final, final
	var word [32]byte
	n := 0        // bytes of the current word (may exceed len(word): then it is not looked up)
	ascii := true // the current word is ASCII letters and digits
	digitsOnly := true
	wordStart, prevEnd := 0, -2
	var prev1, prev2 uint16
	capital := false // the current word starts with an upper-case letter
	sentenceStart := true
	cjkSeen := false
	quoteStart := -1 // where the text of an open quotation starts
	data := false    // after a colon or a blank line: what follows is the data the instruction is about
	quote := func(i, size int, open, close bool) {
		switch {
		case quoteStart >= 0 && close:
			q := strings.TrimSpace(t[quoteStart:i])
			if len(q) > 0 && len(q) <= 30 && !strings.ContainsAny(q, " \n") {
				s.quotedWord = true
			}
			quoteStart = -1
		case open:
			quoteStart = i + size
		}
	}

	headEnd, tailStart := instructions(t)
	var beforeFence structure
	s.inFence = false
	defer func() {
		if s.inFence { // an unclosed fence runs to the end of the text
			s.structure, s.inFence = beforeFence, false
		}
	}()
	flush := func(end int) {
		w := word[:min(n, len(word))]
		var id uint16
		s.pos, s.inData = wordStart, data || quoteStart >= 0
		if n <= len(word) && (end <= headEnd || wordStart >= tailStart) {
			if e, ok := vocab.words[string(w)]; ok {
				id = e.id
				if e.kind != kindNone {
					s.hit(e.id, e.kind, e.text)
				}
			}
		}
		if id != 0 && prev1 != 0 {
			if p, ok := vocab.phrases[[3]uint16{prev1, id, 0}]; ok {
				s.hit(p.id, p.kind, p.text)
			}
			if prev2 != 0 {
				if p, ok := vocab.phrases[[3]uint16{prev2, prev1, id}]; ok {
					s.hit(p.id, p.kind, p.text)
				}
			}
		}
		switch {
		case digitsOnly:
			v := 0
			for _, c := range w {
				v = v*10 + int(c-'0')
			}
			if n == 3 && prevEnd == wordStart-1 && wordStart > 0 && t[wordStart-1] == ',' && s.sinceNumber == 0 {
				s.lastNumber = s.lastNumber*1000 + v // 1,500
			} else {
				if quoteStart >= 0 || data {
					s.dataNumbers++
				} else {
					s.numbers++
				}
				s.lastNumber = min(v, 1<<20)
			}
			s.sinceNumber = 0
		default:
			s.sinceNumber++
			if ascii && isVariable(w) {
				s.vars++
			}
			if s.sinceNumber <= 2 && s.lastNumber >= 500 {
				switch string(w) {
				case "word", "words", "wörter", "mots", "palabras", "слов", "слова":
					s.wordCount = true
				}
			}
		}
		if capital && !sentenceStart {
			s.names++
		}
		if s.firstWord {
			s.firstWord = false
			s.whStart = s.whStart || vocab.wh[string(w)]
			s.auxStart = s.auxStart || vocab.aux[string(w)]
		}
		sentenceStart = false
		prev2, prev1, n, prevEnd = prev1, id, 0, end
		ascii, digitsOnly, capital = true, true, false
	}
	lineStart := true
	for i := 0; i < len(t); {
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
			if len(rest) >= 2 && rest[1] == ' ' && (rest[0] == '-' || rest[0] == '*') || strings.HasPrefix(rest, "• ") {
				s.bullets++
			} else if k := digitsPrefix(rest); k > 0 && k+1 < len(rest) && (rest[k] == '.' || rest[k] == ')') && rest[k+1] == ' ' {
				s.bullets++
			}
		}
		if c < utf8.RuneSelf {
			switch {
			case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
				if n == 0 {
					wordStart = i
				}
				if n < len(word) {
					word[n] = c
				}
				n++
				digitsOnly = digitsOnly && c <= '9'
				i++
				continue
			case c >= 'A' && c <= 'Z':
				if n == 0 {
					wordStart, capital = i, true
				}
				if n < len(word) {
					word[n] = c + ('a' - 'A')
				}
				n++
				digitsOnly = false
				i++
				continue
			}
			if n > 0 {
				flush(i)
			}
			switch c {
			case '\n':
				lineStart = true
				// A blank line ends the instruction's paragraph: what follows is data.
				data = data || i+1 < len(t) && t[i+1] == '\n' || i+2 < len(t) && t[i+1] == '\r' && t[i+2] == '\n'
			case '?':
				s.questions++
				s.sentences++
				sentenceStart = true
			case '.', '!', ':':
				if i+1 == len(t) || t[i+1] == ' ' || t[i+1] == '\n' {
					s.sentences++
					sentenceStart = true
					data = data || c == ':'
				}
			case ';', '{', '}', '<', '>':
				s.symbols++
			case '"':
				quote(i, 1, true, true)
			case '\'':
				if i == 0 || t[i-1] == ' ' || quoteStart >= 0 {
					quote(i, 1, i == 0 || t[i-1] == ' ', true)
				}
			case '`':
				if strings.HasPrefix(t[i:], "```") {
					s.fences++
					i += 2
					// Code is not prose: what is counted inside a fence (its variables, numbers,
					// operators, words) is dropped when the fence closes; the code score counts it.
					if s.inFence {
						s.structure, s.inFence = beforeFence, false
					} else {
						beforeFence, s.inFence = s.structure, true
					}
				}
			}
			if c == '=' {
				s.symbols++
			}
			if isMathOp(rune(c)) && nearDigit(t, i, 1) {
				s.mathOps++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(t[i:])
		switch r {
		case '“', '„', '«', '「', '『':
			quote(i, size, true, r == '“')
		case '”', '»', '」', '』':
			quote(i, size, false, true)
		}
		switch {
		case isCJK(r):
			if n > 0 {
				flush(i)
			}
			s.cjk++
			cjkSeen = true
			// Chinese and Japanese words are matched where they start, in the instruction windows.
			if i < headEnd || i >= tailStart {
				s.pos = i
				for _, e := range vocab.cjk[r] {
					if strings.HasPrefix(t[i:], e.text) {
						s.hit(e.id, e.kind, e.text)
					}
				}
			}
			switch r {
			case '？':
				s.questions++
				s.sentences++
			case '。', '！':
				s.sentences++
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if n == 0 {
				wordStart = i
				capital = unicode.IsUpper(r)
			}
			lr := unicode.ToLower(r)
			if n+utf8.RuneLen(lr) <= len(word) {
				utf8.EncodeRune(word[n:], lr)
			}
			n += utf8.RuneLen(lr)
			ascii, digitsOnly = false, false
		default:
			if n > 0 {
				flush(i)
			}
			if isMathOp(r) && nearDigit(t, i, size) {
				s.mathOps++
			}
		}
		i += size
	}
	if n > 0 {
		flush(len(t))
	}
	if cjkSeen && s.firstWord {
		s.firstWord = false
	}
	return len(t)
}

// digitsPrefix returns how many ASCII digits s starts with.
func digitsPrefix(s string) int {
	k := 0
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		k++
	}
	return k
}

// nearDigit reports whether the operator at t[i:i+size] has a digit or a closing parenthesis as its
// nearest non-space neighbour on either side: 3x + 7 = 2, x^2, (n+1)² but not a = b in code.
func nearDigit(t string, i, size int) bool {
	j := i - 1
	for j >= 0 && t[j] == ' ' {
		j--
	}
	if j >= 0 && (t[j] >= '0' && t[j] <= '9' || t[j] == ')') {
		return true
	}
	if j >= 0 && t[j] >= 'a' && t[j] <= 'z' && (j == 0 || !isASCIILetter(t[j-1])) {
		return true // a one-letter variable: x = …
	}
	k := i + size
	for k < len(t) && t[k] == ' ' {
		k++
	}
	return k < len(t) && (t[k] >= '0' && t[k] <= '9' || t[k] == '(')
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// systemFeature lists the features a system prompt feeds: the kind of task ("you label reviews",
// "you extract", "reason step by step") and the form of the answer ("one word").
var systemFeature = [numFeatures]bool{fProof: true, fWhy: true, fClassify: true, fExtract: true, fYesNo: true,
	fOneWord: true, fTranslate: true, fSummarise: true}

// dataFeature lists the features whose words count apart when they occur in the data.
var dataFeature = [numFeatures]bool{fMath: true, fPuzzle: true, fPlan: true, fNegation: true}

// systemHead is how far into a system prompt its words count: the role and the task are stated
// first ("You label reviews. Reply with one word."), a long policy follows.
const systemHead = 300

// hit records a lexicon entry, once per request.
func (s *scan) hit(id uint16, kind uint8, text string) {
	if s.seen[id/64]&(1<<(id%64)) != 0 {
		return
	}
	s.seen[id/64] |= 1 << (id % 64)
	switch kind {
	case kindCodeLanguage:
		s.languages++
	case kindCodeTerm:
		s.terms++
	default:
		if s.assistant || s.inFence || kind == uint8(fGreeting) && !s.final || s.system && (!systemFeature[kind] || s.pos > systemHead) {
			return
		}
		if s.inData && s.final && dataFeature[kind] {
			s.dataTerms++
			return
		}
		if s.hits[kind] == 0 {
			s.first[kind] = text
		}
		if s.hits[kind] < 255 {
			s.hits[kind]++
		}
	}
}
