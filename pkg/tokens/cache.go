package tokens

import (
	"hash/maphash"
	"sync"
)

// defaultCacheEntries bounds the count cache: at most this many counts (about 40 bytes each) are kept.
const defaultCacheEntries = 1 << 16

// What a cache key was computed from, so equal bytes counted differently never share an entry.
const (
	kindText = iota // a message text, counted as is
	kindJSON        // a JSON value, counted in compact form
)

// key identifies a counted text by a 128-bit hash of its bytes: storing the texts themselves would
// keep every distinct prompt alive. Two independently seeded 64-bit hashes make a collision (which
// would return another text's count) vanishingly unlikely at any realistic cache size.
type key struct {
	h1, h2 uint64
	enc    encodingID
	kind   uint8
}

type entry struct {
	n     int
	exact bool
}

// cache is a bounded map of counts with approximate LRU eviction: entries live in a current and an
// old generation; when the current one fills up it becomes the old one and the previous old one is
// dropped. A hit in the old generation moves the entry to the current one, so a prompt shared by
// every request never leaves, while a stream of distinct prompts costs at most the bound.
type cache struct {
	seed1, seed2 maphash.Seed

	mu       sync.Mutex
	cur, old map[key]entry
	gen      int // entries per generation
}

func newCache(entries int) *cache {
	gen := max(entries/2, 1)
	return &cache{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), cur: make(map[key]entry, gen), gen: gen}
}

func (c *cache) key(enc encodingID, kind uint8, text string) key {
	return key{h1: maphash.String(c.seed1, text), h2: maphash.String(c.seed2, text), enc: enc, kind: kind}
}

func (c *cache) keyBytes(enc encodingID, kind uint8, b []byte) key {
	return key{h1: maphash.Bytes(c.seed1, b), h2: maphash.Bytes(c.seed2, b), enc: enc, kind: kind}
}

func (c *cache) get(k key) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	if v, ok := c.old[k]; ok {
		delete(c.old, k)
		c.putLocked(k, v)
		return v, true
	}
	return entry{}, false
}

func (c *cache) put(k key, v entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *cache) putLocked(k key, v entry) {
	if _, ok := c.cur[k]; !ok && len(c.cur) >= c.gen {
		c.old, c.cur = c.cur, make(map[key]entry, c.gen)
	}
	c.cur[k] = v
}

// len returns the number of entries held, for tests.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
