package tokens

import "math"

// noRank marks a pair of parts that has no merge.
const noRank = math.MaxInt32

// shortPiece is the length up to which a piece is merged with tiktoken's own quadratic algorithm on
// stack arrays; longer pieces use a heap, which is O(n log n) so that no input can stall the counter.
const shortPiece = 64

// countPiece returns the number of tokens byte-pair encoding makes of one pre-tokenised piece: it
// repeatedly merges the adjacent pair of parts whose concatenation has the lowest rank (the leftmost
// on ties) until no pair has a rank, as tiktoken does.
func countPiece(ranks map[string]int, piece string) int {
	if len(piece) <= 1 {
		return len(piece)
	}
	if _, ok := ranks[piece]; ok {
		return 1
	}
	if len(piece) <= shortPiece {
		return countShort(ranks, piece)
	}
	return countLong(ranks, piece)
}

// countShort is tiktoken's byte_pair_merge: parts[i] is where part i starts and rank[i] the rank of
// merging part i with part i+1.
func countShort(ranks map[string]int, piece string) int {
	var startBuf, rankBuf [shortPiece + 1]int32
	n := len(piece)
	start, rank := startBuf[:n+1], rankBuf[:n+1]
	for i := range start {
		start[i] = int32(i)
	}
	pair := func(i int) int32 { // rank of parts i and i+1 together, in the current parts
		if i+2 >= len(start) {
			return noRank
		}
		if r, ok := ranks[piece[start[i]:start[i+2]]]; ok {
			return int32(r)
		}
		return noRank
	}
	for i := range rank {
		rank[i] = pair(i)
	}
	for len(start) > 2 {
		best, at := int32(noRank), -1
		for i := 0; i < len(start)-1; i++ {
			if rank[i] < best {
				best, at = rank[i], i
			}
		}
		if at < 0 {
			break
		}
		start = append(start[:at+1], start[at+2:]...)
		rank = append(rank[:at+1], rank[at+2:]...)
		rank[at] = pair(at)
		if at > 0 {
			rank[at-1] = pair(at - 1)
		}
	}
	return len(start) - 1
}

// countLong performs the same merges with a linked list of parts and a heap of candidate pairs
// ordered by (rank, position), so the leftmost lowest pair is merged first exactly as in countShort.
// Parts are named by the byte offset where they start; heap entries whose part has since been merged
// away or whose rank changed are skipped when popped.
func countLong(ranks map[string]int, piece string) int {
	n := len(piece)
	next := make([]int32, n) // start of the following part (n for the last); -1 once merged away
	prev := make([]int32, n) // start of the preceding part; -1 for the first
	rank := make([]int32, n) // rank of the part with its successor
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	pair := func(i int32) int32 {
		j := next[i]
		if j >= int32(n) {
			return noRank
		}
		end := int32(n)
		if next[j] < int32(n) {
			end = next[j]
		}
		if r, ok := ranks[piece[i:end]]; ok {
			return int32(r)
		}
		return noRank
	}
	h := make(pairHeap, 0, n)
	for i := range int32(n) {
		if rank[i] = pair(i); rank[i] != noRank {
			h.push(candidate{rank[i], i})
		}
	}
	parts := n
	for len(h) > 0 {
		c := h.pop()
		if next[c.at] < 0 || rank[c.at] != c.rank {
			continue // stale
		}
		gone := next[c.at]
		next[c.at] = next[gone]
		if next[gone] < int32(n) {
			prev[next[gone]] = c.at
		}
		next[gone], rank[gone] = -1, noRank
		parts--
		if rank[c.at] = pair(c.at); rank[c.at] != noRank {
			h.push(candidate{rank[c.at], c.at})
		}
		if p := prev[c.at]; p >= 0 {
			if rank[p] = pair(p); rank[p] != noRank {
				h.push(candidate{rank[p], p})
			}
		}
	}
	return parts
}

type candidate struct{ rank, at int32 }

func (a candidate) less(b candidate) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.at < b.at)
}

// pairHeap is a binary min-heap of candidates (container/heap's interface boxing costs more than the
// merging itself).
type pairHeap []candidate

func (h *pairHeap) push(c candidate) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].less(s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *pairHeap) pop() candidate {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < len(s) && s[l].less(s[small]) {
			small = l
		}
		if r := l + 1; r < len(s) && s[r].less(s[small]) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}
