// Package tokens counts prompt tokens the way the providers bill them, and turns counts into costs
// and context-window checks.
//
// Counts are exact (equal to OpenAI's tiktoken) for models configured with encoding cl100k_base or
// o200k_base; for every other model (Claude, Gemini, Llama...) they are an estimate made with
// o200k_base, so one tokenisation serves most models. Chat overhead follows OpenAI's cookbook
// (num_tokens_from_messages).
//
// The tokeniser uses tiktoken's vocabularies (embedded by tiktoken-go-loader) with its own
// pre-tokeniser and merge loop: tiktoken-go gives the same counts but at about 3 MB/s on two cores
// with a quadratic worst case, while this runs at tens of MB/s per core with an O(n log n) worst case.
// Beyond MaxExactText per text or MaxExactPiece per run without whitespace, counts are estimates
// (marked inexact), so a hostile input costs milliseconds and megabytes, not seconds and gigabytes.
// The tests hold it to tiktoken-go on every vector, on random text and under fuzzing, and to
// js-tiktoken's counts in testdata/tokens/vectors.json.
package tokens

import (
	"context"
	"fmt"
	"sync"
	"unicode/utf8"

	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// The encodings counted exactly. Any other encoding name, including "", is estimated with O200K.
const (
	CL100K = "cl100k_base" // gpt-4, gpt-3.5-turbo, text-embedding-3
	O200K  = "o200k_base"  // gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4
)

// encodingID indexes the encodings (and is part of cache keys).
type encodingID uint8

const (
	encO200K encodingID = iota
	encCL100K
)

// resolve maps an encoding name to the encoding used and whether counts with it are exact for a
// model configured with that name.
func resolve(encoding string) (encodingID, bool) {
	switch encoding {
	case CL100K:
		return encCL100K, true
	case O200K:
		return encO200K, true
	}
	return encO200K, false
}

// encoding is a BPE vocabulary with its pre-tokeniser.
type encoding struct {
	ranks map[string]int                  // token bytes -> rank; immutable once built
	next  func(s string, p int) (end int) // the end of the piece starting at p
}

// The ranks come from tiktoken-go-loader's embedded files (tiktoken's own loader downloads them,
// which fails offline). Building one costs 100–300 ms and the result is immutable, so each is built
// once per process.
var encodings = [...]func() (*encoding, error){
	encO200K:  sync.OnceValues(func() (*encoding, error) { return load(O200K, nextO200K) }),
	encCL100K: sync.OnceValues(func() (*encoding, error) { return load(CL100K, nextCL100K) }),
}

func load(name string, next func(string, int) int) (*encoding, error) {
	ranks, err := tiktoken_loader.NewOfflineLoader().LoadTiktokenBpe(name + ".tiktoken")
	if err != nil {
		return nil, fmt.Errorf("tokens: load encoding %s: %w", name, err)
	}
	return &encoding{ranks: ranks, next: next}, nil
}

// Calculator counts tokens. It is safe for concurrent use; its cache of message counts is shared by
// all callers, so use one Calculator per run.
type Calculator struct {
	cache *cache
}

// New returns a Calculator with an empty cache. The encodings are built on first use (or by Warm).
func New() *Calculator {
	return &Calculator{cache: newCache(defaultCacheEntries)}
}

// Warm builds both encodings now, so the first count does not pay for it, and reports an error if
// either cannot be built. Should an encoding fail to build (its ranks are embedded in the binary, so
// only a corrupted build could), counts with it fall back to one token per four bytes, marked inexact
// by Input; Warm is how to surface that error up front.
func (c *Calculator) Warm() error {
	for _, get := range encodings {
		if _, err := get(); err != nil {
			return err
		}
	}
	return nil
}

// Count returns the number of tokens of text in the named encoding (cl100k_base, or o200k_base for
// any other name), with special tokens such as "<|endoftext|>" counted as the ordinary text they are
// in a prompt. Within the bounds below it equals len(EncodeOrdinary(text)) of tiktoken (and
// tiktoken-go, which replaces invalid UTF-8 by U+FFFD first, as this does); beyond them it is an
// estimate (CountContext says which). Count does not use the cache; Input does.
func (c *Calculator) Count(encoding, text string) int {
	n, _ := c.CountContext(context.Background(), encoding, text)
	return n
}

// CountContext is Count that also reports whether the count is exact and stops early, returning
// an estimate marked inexact, once ctx is done (the caller checks ctx.Err()). It checks ctx at least
// every checkEvery bytes, so cancelling acts within milliseconds even on a hostile text.
//
// The work per text is bounded: a text longer than MaxExactText is estimated from evenly spaced
// samples, and a piece without whitespace longer than MaxExactPiece (50 MB of one letter, a base64
// blob) is estimated from its beginning; both are marked inexact. Exact BPE on such input would take
// seconds and a dozen bytes of memory per byte of text.
func (c *Calculator) CountContext(ctx context.Context, encoding, text string) (n int, exact bool) {
	id, _ := resolve(encoding)
	return c.count(ctx, id, text)
}

// Bounds on exact counting (see CountContext).
const (
	// MaxExactText is the longest text counted exactly, 8 MiB: about two million tokens, beyond every
	// context window but the largest, so only texts no model can take are estimated.
	MaxExactText = 8 << 20
	// MaxExactPiece is the longest pre-tokenised piece (a run without whitespace) counted exactly.
	// Real words are far shorter; the bound keeps one piece's merge work to milliseconds.
	MaxExactPiece = 64 << 10
	// textSamples windows of sampleBytes each make the estimate of a text beyond MaxExactText.
	textSamples = 16
	sampleBytes = 32 << 10
	// checkEvery is how many bytes of text are counted between two looks at the context.
	checkEvery = 256 << 10
)

// count tokenises text, reporting whether the count is exact (false for an estimate: the text or a
// piece of it beyond the bounds, ctx done midway, or an encoding that could not be built).
func (c *Calculator) count(ctx context.Context, id encodingID, text string) (int, bool) {
	if text == "" {
		return 0, true
	}
	enc, err := encodings[id]()
	if err != nil {
		return (len(text) + 3) / 4, false
	}
	if len(text) > MaxExactText {
		return estimateText(ctx, enc, text), false
	}
	if !utf8.ValidString(text) {
		text = string([]rune(text)) // each invalid byte becomes U+FFFD, as in tiktoken-go
	}
	return countText(ctx, enc, text)
}

// countText counts text exactly, estimating pieces beyond MaxExactPiece and, once ctx is done, the
// rest of the text at four bytes per token.
func countText(ctx context.Context, enc *encoding, text string) (int, bool) {
	n, exact := 0, true
	check := checkEvery
	for p := 0; p < len(text); {
		if p >= check {
			if ctx.Err() != nil {
				return n + (len(text)-p+3)/4, false
			}
			check = p + checkEvery
		}
		end := enc.next(text, p)
		if end-p > MaxExactPiece {
			n += estimatePiece(enc, text[p:end])
			exact = false
		} else {
			n += countPiece(enc.ranks, text[p:end])
		}
		p = end
	}
	return n, exact
}

// estimatePiece estimates a long piece from its first MaxExactPiece bytes, scaled to its length.
func estimatePiece(enc *encoding, piece string) int {
	head := piece[:runeStart(piece, MaxExactPiece)]
	if head == "" {
		return (len(piece) + 3) / 4
	}
	k := countPiece(enc.ranks, head)
	return int((int64(k)*int64(len(piece)) + int64(len(head)) - 1) / int64(len(head)))
}

// estimateText estimates a text beyond MaxExactText from textSamples evenly spaced windows of
// sampleBytes, counted as countText does, scaled to the text's length.
func estimateText(ctx context.Context, enc *encoding, text string) int {
	counted, bytes := 0, 0
	stride := len(text) / textSamples
	for i := range textSamples {
		if ctx.Err() != nil {
			break
		}
		from := runeStart(text, i*stride)
		to := runeStart(text, min(from+sampleBytes, len(text)))
		w := text[from:to]
		if !utf8.ValidString(w) {
			w = string([]rune(w))
		}
		k, _ := countText(ctx, enc, w)
		counted, bytes = counted+k, bytes+to-from
	}
	if bytes == 0 {
		return (len(text) + 3) / 4
	}
	return int((int64(counted)*int64(len(text)) + int64(bytes) - 1) / int64(bytes))
}

// runeStart moves offset i of s back to the start of the rune it falls in (at most 3 bytes).
func runeStart(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	for j := 0; j < utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	return i
}

// cachedCount is count through the cache: a system prompt shared by a million requests is tokenised
// once. A count cut short by ctx is not cached.
func (c *Calculator) cachedCount(ctx context.Context, id encodingID, text string) (int, bool) {
	if text == "" {
		return 0, true
	}
	k := c.cache.key(id, kindText, text)
	if v, ok := c.cache.get(k); ok {
		return v.n, v.exact
	}
	n, exact := c.count(ctx, id, text)
	if ctx.Err() == nil {
		c.cache.put(k, entry{n: n, exact: exact})
	}
	return n, exact
}
