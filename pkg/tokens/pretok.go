package tokens

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenisers split text into the pieces that byte-pair encoding then works on, exactly as the
// encodings' regular expressions do (tiktoken matches them with a backtracking engine, leftmost
// alternative first). They are written out by hand because evaluating the expressions with regexp2
// dominated the cost of counting (about 3 MB/s on two cores); these run at memory speed and allocate
// nothing. Character classes follow Go's unicode tables, as regexp2 does: \s is unicode.IsSpace,
// \p{L} unicode.IsLetter, \p{N} unicode.IsNumber. TestPretokenizerMatchesRegexp compares them with
// tiktoken-go on the vectors and on random text.

// nextCL100K returns the end of the piece starting at p (< len(s)) under cl100k_base's expression:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func nextCL100K(s string, p int) int {
	c0, n0 := decode(s, p)
	if c0 == '\'' {
		if n := contraction(s, p); n > 0 {
			return p + n
		}
	}
	if isLetter(c0) {
		return letterRun(s, p)
	}
	if c0 != '\r' && c0 != '\n' && !isNumber(c0) && p+n0 < len(s) {
		if c1, _ := decode(s, p+n0); isLetter(c1) {
			return letterRun(s, p+n0)
		}
	}
	if isNumber(c0) {
		return numberRun(s, p)
	}
	if e, ok := punctuation(s, p, c0, n0, false); ok {
		return e
	}
	return whitespace(s, p)
}

// nextO200K returns the end of the piece starting at p (< len(s)) under o200k_base's expression:
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// Below, "upper" is the first letter class and "lower" the second; Lm, Lo and marks belong to both.
func nextO200K(s string, p int) int {
	c0, n0 := decode(s, p)
	prefix := c0 != '\r' && c0 != '\n' && !isLetter(c0) && !isNumber(c0) && p+n0 < len(s)
	// First alternative: the optional prefix is greedy, so it is tried first.
	if prefix {
		if e, ok := upperThenLower(s, p+n0); ok {
			return e + contraction(s, e)
		}
	}
	if e, ok := upperThenLower(s, p); ok {
		return e + contraction(s, e)
	}
	// Second alternative: one or more upper, then any lower.
	if prefix {
		if c1, _ := decode(s, p+n0); isUpper(c1) {
			e := lowerRun(s, upperRun(s, p+n0))
			return e + contraction(s, e)
		}
	}
	if isUpper(c0) {
		e := lowerRun(s, upperRun(s, p))
		return e + contraction(s, e)
	}
	if isNumber(c0) {
		return numberRun(s, p)
	}
	if e, ok := punctuation(s, p, c0, n0, true); ok {
		return e
	}
	return whitespace(s, p)
}

// upperThenLower matches [upper]*[lower]+ at p with backtracking semantics: the upper run is greedy
// and gives characters back until the lower run can start.
func upperThenLower(s string, p int) (int, bool) {
	q, lastLower := p, -1
	for q < len(s) {
		c, n := decode(s, q)
		if !isUpper(c) {
			break
		}
		if isLower(c) { // Lm, Lo or a mark: in both classes
			lastLower = q + n
		}
		q += n
	}
	if q < len(s) {
		if c, _ := decode(s, q); isLower(c) {
			return lowerRun(s, q), true
		}
	}
	// Backtracking: the lower run starts at the last character of the upper run that is also lower,
	// and cannot extend past it (what follows is upper-only, or not a letter).
	if lastLower >= 0 {
		return lastLower, true
	}
	return 0, false
}

// punctuation matches ` ?[^\s\p{L}\p{N}]+[\r\n]*` (with '/' in the trailing class when slash is set).
func punctuation(s string, p int, c0 rune, n0 int, slash bool) (int, bool) {
	q := p
	if c0 == ' ' && p+n0 < len(s) {
		if c1, _ := decode(s, p+n0); isPunct(c1) {
			q = p + n0
		}
	}
	if q == p && !isPunct(c0) {
		return 0, false
	}
	for q < len(s) {
		c, n := decode(s, q)
		if !isPunct(c) {
			break
		}
		q += n
	}
	for q < len(s) && (s[q] == '\r' || s[q] == '\n' || (slash && s[q] == '/')) {
		q++
	}
	return q, true
}

// whitespace matches `\s*[\r\n]+|\s+(?!\S)|\s+` at p, where s[p] starts a space.
func whitespace(s string, p int) int {
	q, afterNewline, last := p, -1, p
	for q < len(s) {
		c, n := decode(s, q)
		if !isSpace(c) {
			break
		}
		if c == '\r' || c == '\n' {
			afterNewline = q + n
		}
		last = q
		q += n
	}
	switch {
	case afterNewline > 0: // \s*[\r\n]+ backtracks to the last newline of the run
		return afterNewline
	case q == len(s) || last == p: // \s+(?!\S) at the end of the text, or a single space: \s+
		return q
	}
	return last // \s+(?!\S) leaves the last space to the next piece
}

// contraction returns the length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at p, or 0.
func contraction(s string, p int) int {
	if p+1 >= len(s) || s[p] != '\'' {
		return 0
	}
	switch s[p+1] | 0x20 {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if p+2 < len(s) && s[p+2]|0x20 == 'e' {
			return 3
		}
	case 'l':
		if p+2 < len(s) && s[p+2]|0x20 == 'l' {
			return 3
		}
	}
	return 0
}

func letterRun(s string, p int) int {
	for p < len(s) {
		c, n := decode(s, p)
		if !isLetter(c) {
			break
		}
		p += n
	}
	return p
}

func upperRun(s string, p int) int {
	for p < len(s) {
		c, n := decode(s, p)
		if !isUpper(c) {
			break
		}
		p += n
	}
	return p
}

func lowerRun(s string, p int) int {
	for p < len(s) {
		c, n := decode(s, p)
		if !isLower(c) {
			break
		}
		p += n
	}
	return p
}

// numberRun matches \p{N}{1,3}.
func numberRun(s string, p int) int {
	for i := 0; i < 3 && p < len(s); i++ {
		c, n := decode(s, p)
		if !isNumber(c) {
			break
		}
		p += n
	}
	return p
}

func decode(s string, p int) (rune, int) {
	if c := s[p]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[p:])
}

func isLetter(c rune) bool {
	if c < utf8.RuneSelf {
		c |= 0x20
		return c >= 'a' && c <= 'z'
	}
	return unicode.IsLetter(c)
}

func isNumber(c rune) bool {
	if c < utf8.RuneSelf {
		return c >= '0' && c <= '9'
	}
	return unicode.IsNumber(c)
}

func isSpace(c rune) bool {
	if c < utf8.RuneSelf {
		return c == ' ' || (c >= '\t' && c <= '\r')
	}
	return unicode.IsSpace(c)
}

func isPunct(c rune) bool { return !isSpace(c) && !isLetter(c) && !isNumber(c) }

// isUpper is o200k_base's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}].
func isUpper(c rune) bool {
	if c < utf8.RuneSelf {
		return c >= 'A' && c <= 'Z'
	}
	return unicode.In(c, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M)
}

// isLower is o200k_base's [\p{Ll}\p{Lm}\p{Lo}\p{M}].
func isLower(c rune) bool {
	if c < utf8.RuneSelf {
		return c >= 'a' && c <= 'z'
	}
	return unicode.In(c, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M)
}
