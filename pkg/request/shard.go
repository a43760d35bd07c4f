package request

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Shard is one part of a job split between processes (--shard i/n): the prompts whose id hashes
// to part I of N. The zero Shard (and any 1/1) is the whole job. The hash is SHA-256 of the id, so
// every process, on any machine and at any time, puts a prompt in the same shard: the n shards are
// disjoint, their union is the whole input, and a resumed shard takes the same prompts.
type Shard struct {
	I, N int // 1-based: 1 ≤ I ≤ N
}

// ParseShard reads "i/n" (1 ≤ i ≤ n); "" is the whole job. Its errors say how to write it.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("--shard %q: write i/n with 1 ≤ i ≤ n, e.g. --shard 1/3 … --shard 3/3", s)
	}
	return Shard{I: i, N: n}, nil
}

// Has reports whether the prompt with id belongs to the shard.
func (s Shard) Has(id string) bool {
	if s.N <= 1 {
		return true
	}
	h := sha256.Sum256([]byte(id))
	return binary.BigEndian.Uint64(h[:8])%uint64(s.N) == uint64(s.I-1)
}

// String returns "i/n", or "" for the whole job.
func (s Shard) String() string {
	if s.N <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}
