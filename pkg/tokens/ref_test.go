package tokens

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// The reference: tiktoken-go, whose counts equal OpenAI's tiktoken, and the encodings' expressions
// as it compiles them (copied from tiktoken-go's encoding.go).
var (
	refPatterns = map[string]string{
		CL100K: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
		O200K: strings.Join([]string{
			`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
			`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
			`\p{N}{1,3}`, ` ?[^\s\p{L}\p{N}]+[\r\n/]*`, `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`,
		}, "|"),
	}
	refNext = map[string]func(string, int) int{CL100K: nextCL100K, O200K: nextO200K}
	refRe   = map[string]func() *regexp2.Regexp{
		CL100K: sync.OnceValue(func() *regexp2.Regexp { return regexp2.MustCompile(refPatterns[CL100K], regexp2.None) }),
		O200K:  sync.OnceValue(func() *regexp2.Regexp { return regexp2.MustCompile(refPatterns[O200K], regexp2.None) }),
	}

	refLoader = sync.OnceFunc(func() { tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader()) })
	refEnc    = map[string]func() (*tiktoken.Tiktoken, error){
		CL100K: sync.OnceValues(func() (*tiktoken.Tiktoken, error) { refLoader(); return tiktoken.GetEncoding(CL100K) }),
		O200K:  sync.OnceValues(func() (*tiktoken.Tiktoken, error) { refLoader(); return tiktoken.GetEncoding(O200K) }),
	}
)

// refPieces splits text with regexp2, as tiktoken-go does, returning the pieces.
func refPieces(t testing.TB, enc, text string) []string {
	re := refRe[enc]()
	runes := []rune(text)
	var out []string
	m, err := re.FindRunesMatch(runes)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		out = append(out, string(runes[m.Index:m.Index+m.Length]))
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ourPieces(enc, text string) []string {
	var out []string
	for p := 0; p < len(text); {
		e := refNext[enc](text, p)
		out = append(out, text[p:e])
		p = e
	}
	return out
}

// checkAgainstReference asserts that our pieces and count of text equal tiktoken-go's.
func checkAgainstReference(t *testing.T, c *Calculator, text string) {
	t.Helper()
	valid := text
	if !utf8.ValidString(text) {
		valid = string([]rune(text)) // what Count does first
	}
	for _, enc := range []string{CL100K, O200K} {
		want, got := refPieces(t, enc, text), ourPieces(enc, valid)
		if strings.Join(want, "\x00") != strings.Join(got, "\x00") {
			t.Errorf("%s %s: pieces\n got %q\nwant %q", enc, short(text), got, want)
			continue
		}
		ref, err := refEnc[enc]()
		if err != nil {
			t.Fatal(err)
		}
		if n, want := c.Count(enc, text), len(ref.EncodeOrdinary(text)); n != want {
			t.Errorf("%s %s: %d tokens, tiktoken-go %d", enc, short(text), n, want)
		}
	}
}

func TestPretokenizerMatchesRegexp(t *testing.T) {
	t.Parallel()
	c := New()
	for _, s := range testVectors(t).Strings {
		checkAgainstReference(t, c, s.Text)
	}
}

// alphabet covers every character class the expressions distinguish, with the awkward members:
// titlecase and modifier letters, marks, non-decimal numbers, Unicode spaces, CR/LF, apostrophes.
var alphabet = []string{
	"a", "z", "s", "t", "e", "l", "r", "v", "m", "d", "A", "S", "L", "E", "0", "7", "'", " ", "  ", "\t", "\n",
	"\r\n", "\r", "/", ".", ",", "!", "-", "_", "\"", "(", "é", "É", "ǅ", "ʰ", "ー", "中", "文", "\u0301", "\u0308",
	"²", "½", "Ⅻ", "٣", "\u00a0", "\u2003", "\u2028", "\u0085", "😀", "👍🏽", "\u200d", "ß", "ﬁ", "ſ", "K",
	"'S", "'ll", "'Re", "'ve", "'d", "'m", "'t", "’", "x\u0301y", "AB", "ab", "Ab", "aB", "\x80", "\xff",
}

func randomText(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func TestPretokenizerRandom(t *testing.T) {
	t.Parallel()
	c := New()
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		checkAgainstReference(t, c, randomText(r, 1+r.IntN(40)))
		if t.Failed() {
			return
		}
	}
}

// TestLongPieces checks the heap merge against tiktoken on pieces longer than shortPiece.
func TestLongPieces(t *testing.T) {
	t.Parallel()
	c := New()
	r := rand.New(rand.NewPCG(3, 4))
	texts := []string{
		strings.Repeat("a", 1000), strings.Repeat("ab", 300), strings.Repeat("!", 777), strings.Repeat(" ", 500),
		strings.Repeat("数据", 200), strings.Repeat("Supercalifragilistic", 20), "x" + strings.Repeat("\u0301", 100),
	}
	for range 50 {
		var b strings.Builder
		for b.Len() < 300 {
			b.WriteString([]string{"a", "b", "e", "th", "ing", "tion", "Q", "zz"}[r.IntN(8)])
		}
		texts = append(texts, b.String())
	}
	for _, text := range texts {
		checkAgainstReference(t, c, text)
	}
	// Both merge algorithms agree on every short piece of the vectors and of random text.
	enc, err := encodings[encO200K]()
	if err != nil {
		t.Fatal(err)
	}
	var pieces []string
	for _, s := range testVectors(t).Strings {
		pieces = append(pieces, ourPieces(O200K, s.Text)...)
	}
	for range 500 {
		pieces = append(pieces, randomText(r, 1+r.IntN(20)))
	}
	compared := 0
	for _, piece := range pieces {
		if len(piece) > 1 && len(piece) <= shortPiece {
			compared++
			if a, b := countShort(enc.ranks, piece), countLong(enc.ranks, piece); a != b {
				t.Errorf("piece %q: quadratic %d, heap %d", piece, a, b)
			}
		}
	}
	if compared < 500 {
		t.Errorf("only %d pieces compared", compared)
	}
}

func FuzzCount(f *testing.F) {
	for _, s := range []string{"", "Hello, world!", "I'm here", "  \n x", "é\u0301", "ǅa", "12345", "a'LL", "\xff"} {
		f.Add(s)
	}
	c := New()
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 2000 {
			return
		}
		checkAgainstReference(t, c, text)
	})
}
