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
// The tests hold it to tiktoken-go on every vector, on random text and under fuzzing, and to
// js-tiktoken's counts in testdata/tokens/vectors.json.
package tokens

import (
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
// in a prompt. It equals len(EncodeOrdinary(text)) of tiktoken (and tiktoken-go, which replaces
// invalid UTF-8 by U+FFFD first, as this does). Its cost is O(n log n) at worst: pathological input
// such as 100 KB of one letter, on which tiktoken's merge loop is quadratic and takes seconds, takes
// tens of milliseconds. Count does not use the cache; Input does.
func (c *Calculator) Count(encoding, text string) int {
	id, _ := resolve(encoding)
	n, _ := c.count(id, text)
	return n
}

// count tokenises text, reporting whether the count is exact (false only if the encoding could not
// be built and a bytes/4 estimate was used).
func (c *Calculator) count(id encodingID, text string) (int, bool) {
	if text == "" {
		return 0, true
	}
	enc, err := encodings[id]()
	if err != nil {
		return (len(text) + 3) / 4, false
	}
	if !utf8.ValidString(text) {
		text = string([]rune(text)) // each invalid byte becomes U+FFFD, as in tiktoken-go
	}
	n := 0
	for p := 0; p < len(text); {
		end := enc.next(text, p)
		n += countPiece(enc.ranks, text[p:end])
		p = end
	}
	return n, true
}

// cachedCount is count through the cache: a system prompt shared by a million requests is tokenised once.
func (c *Calculator) cachedCount(id encodingID, text string) (int, bool) {
	if text == "" {
		return 0, true
	}
	k := c.cache.key(id, kindText, text)
	if v, ok := c.cache.get(k); ok {
		return v.n, v.exact
	}
	n, exact := c.count(id, text)
	c.cache.put(k, entry{n: n, exact: exact})
	return n, exact
}
