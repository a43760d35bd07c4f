package tokens

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/request"
)

// countingCtx is a context whose Err turns to Canceled after `after` calls; it counts the calls.
type countingCtx struct {
	context.Context
	calls, after int
}

func (c *countingCtx) Err() error {
	c.calls++
	if c.after >= 0 && c.calls > c.after {
		return context.Canceled
	}
	return nil
}

// TestHugeLineWithoutSpacesIsEstimatedWithBoundedMemory is issue 17 row 11: a 50 MB prompt without
// whitespace (one pre-tokenised piece) returns an estimate, marked inexact, close to the exact rate,
// without the gigabyte of merge state exact BPE would need.
func TestHugeLineWithoutSpacesIsEstimatedWithBoundedMemory(t *testing.T) {
	c := New()
	if err := c.Warm(); err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("a", 50<<20)
	req := &request.Request{Messages: []request.Message{{Role: "user", Content: request.Content{Text: line}}}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, exact := c.InputContext(context.Background(), req, O200K)
	runtime.ReadMemStats(&after)
	if exact {
		t.Error("a 50 MB line is marked exact")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("counting allocated %d MiB, want under 16", alloc>>20)
	}
	// The exact rate of a run of "a" (one token per 8 bytes for o200k_base, see TestCountPathological).
	if want := len(line) / 8; n < want*99/100 || n > want*101/100+10 {
		t.Errorf("estimate %d tokens, exact is about %d", n, want)
	}
}

// TestLongPieceInsideATextIsEstimated: a base64-like blob beyond MaxExactPiece inside ordinary text
// makes the count an estimate, near the exact one.
func TestLongPieceInsideATextIsEstimated(t *testing.T) {
	c := New()
	enc, err := encodings[encO200K]()
	if err != nil {
		t.Fatal(err)
	}
	var blob strings.Builder // pseudo-random lower-case letters: one piece, like a long identifier or hash
	for x := uint32(1); blob.Len() < 3*MaxExactPiece; {
		x = x*1664525 + 1013904223
		blob.WriteByte(byte('a' + x>>24%26))
	}
	text := "Decode this attachment and summarise it: " + blob.String() + " Thanks."
	n, exact := c.CountContext(context.Background(), O200K, text)
	if exact {
		t.Error("a text with a piece beyond MaxExactPiece is marked exact")
	}
	want := 0
	for p := 0; p < len(text); { // the exact count, with no bound
		end := enc.next(text, p)
		want += countPiece(enc.ranks, text[p:end])
		p = end
	}
	if diff := n - want; diff*50 > want || -diff*50 > want {
		t.Errorf("estimate %d, exact %d: more than 2%% off", n, want)
	}
	short := "Decode this attachment and summarise it: " + blob.String()[:MaxExactPiece-1] + " Thanks." // the piece is the blob with its leading space
	if _, exact := c.CountContext(context.Background(), O200K, short); !exact {
		t.Error("a piece of MaxExactPiece bytes is not counted exactly")
	}
}

// TestTextBeyondMaxExactTextIsSampled: a text beyond MaxExactText is estimated from samples, within
// a few percent of its exact count.
func TestTextBeyondMaxExactTextIsSampled(t *testing.T) {
	if testing.Short() {
		t.Skip("counts 9 MiB exactly for reference")
	}
	c := New()
	enc, err := encodings[encO200K]()
	if err != nil {
		t.Fatal(err)
	}
	unit := benchText(64 << 10)
	text := strings.Repeat(unit, (MaxExactText/len(unit))+8)
	n, exact := c.CountContext(context.Background(), O200K, text)
	if exact {
		t.Error("a text beyond MaxExactText is marked exact")
	}
	want, _ := countText(context.Background(), enc, text)
	if diff := n - want; diff*50 > want || -diff*50 > want {
		t.Errorf("estimate %d, exact %d: more than 2%% off", n, want)
	}
}

// TestCountingStopsWhenCancelled: counting looks at the context every checkEvery bytes at most and
// stops at the first sign of cancellation, returning an inexact count and caching nothing.
func TestCountingStopsWhenCancelled(t *testing.T) {
	c := New()
	text := strings.Repeat(benchText(64<<10), 64) // 4 MiB: counted exactly when not cancelled
	watch := &countingCtx{Context: context.Background(), after: -1}
	if _, exact := c.CountContext(watch, O200K, text); !exact {
		t.Fatal("a 4 MiB text is not counted exactly")
	}
	if min := len(text)/checkEvery - 1; watch.calls < min {
		t.Errorf("the context was checked %d times over %d bytes, want at least %d", watch.calls, len(text), min)
	}
	for _, size := range []int{len(text), MaxExactText + 1<<20} { // exact and sampled paths
		text := strings.Repeat("x ", size/2)
		cancel := &countingCtx{Context: context.Background(), after: 0}
		req := &request.Request{Messages: []request.Message{{Role: "user", Content: request.Content{Text: text}}}}
		n, exact := c.InputContext(cancel, req, O200K)
		if exact || n <= 0 {
			t.Errorf("%d bytes, cancelled: %d tokens, exact %v; want an inexact estimate", size, n, exact)
		}
		if cancel.calls > 3 {
			t.Errorf("%d bytes: counting went on after the cancellation (%d checks)", size, cancel.calls)
		}
		if _, exact := c.Input(req, O200K); size <= MaxExactText && !exact {
			t.Errorf("%d bytes: the cancelled count was cached", size)
		}
	}
}
