package cache

import (
	"encoding/binary"
	"errors"
	"math"
)

// entryVersion leads every encoded entry; change it whenever Entry's encoding changes, so old
// entries read as damaged (and are bypassed) rather than misread.
const entryVersion = 1

// encode packs e compactly: a version byte, then length-prefixed strings and varints. A hand-made
// encoding because decoding it costs a fraction of encoding/json's, and lookups are the hot path.
func encode(e *Entry) []byte {
	n := 1 + 8 + 4*binary.MaxVarintLen64
	for _, s := range []string{e.Provider, e.Model, e.Content, string(e.ToolCalls), e.FinishReason, e.RequestID} {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	for _, s := range []string{e.Provider, e.Model, e.Content, string(e.ToolCalls), e.FinishReason, e.RequestID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	u := e.Usage
	for _, v := range []int{u.InputTokens, u.OutputTokens, u.CachedTokens, u.ReasoningTokens} {
		b = binary.AppendVarint(b, int64(v))
	}
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(e.CostUSD))
}

var errDamaged = errors.New("undecodable entry")

// decode is encode's inverse.
func decode(b []byte, e *Entry) error {
	if len(b) == 0 || b[0] != entryVersion {
		return errDamaged
	}
	b = b[1:]
	var strs [6]string
	for i := range strs {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return errDamaged
		}
		strs[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	var ints [4]int
	for i := range ints {
		v, k := binary.Varint(b)
		if k <= 0 {
			return errDamaged
		}
		ints[i] = int(v)
		b = b[k:]
	}
	if len(b) != 8 {
		return errDamaged
	}
	e.Provider, e.Model, e.Content, e.FinishReason, e.RequestID = strs[0], strs[1], strs[2], strs[4], strs[5]
	e.ToolCalls = nil
	if strs[3] != "" {
		e.ToolCalls = []byte(strs[3])
	}
	e.Usage.InputTokens, e.Usage.OutputTokens, e.Usage.CachedTokens, e.Usage.ReasoningTokens = ints[0], ints[1], ints[2], ints[3]
	e.CostUSD = math.Float64frombits(binary.LittleEndian.Uint64(b))
	return nil
}
