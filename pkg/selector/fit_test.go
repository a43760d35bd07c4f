package selector

import (
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/model"
)

// TestTooLargeForItsCategoryFallsToAnyCategoryThatFits is issue 17 row 12: a long prompt, which the
// analyser calls large, is served by a smaller category's model whose context fits it when no lane
// of large or above can hold it, instead of failing.
func TestTooLargeForItsCategoryFallsToAnyCategoryThatFits(t *testing.T) {
	huge := lane("g", "long-context", model.Small, 1_000_000_000, 0.1, 0.4)
	tiny := lane("t", "tiny", model.Tiny, 1_000_000_000, 0.01, 0.01)
	large := lane("b", "large", model.Large, 64_000, 2, 8)
	it := item(model.Large, 75_000*4/3, 512) // about 300 KB of text

	for _, tc := range []struct {
		name  string
		lanes []*Lane
		why   string
	}{
		{"no lane of the category", []*Lane{tiny, huge}, "no large lane configured"},
		{"large lanes too small", []*Lane{large, tiny, huge}, "no large lane fits 100512 tokens of context"},
	} {
		ch := Choose(it, tc.lanes, Options{})
		if ch.Err != nil {
			t.Fatalf("%s: %v", tc.name, ch.Err)
		}
		// The nearest category below that fits: small before tiny, however cheap tiny is.
		if ch.Lanes[0] != huge || ch.Category != model.Small || ch.Escalated {
			t.Errorf("%s: %s category %s escalated %v", tc.name, names(ch.Lanes), ch.Category, ch.Escalated)
		}
		if !strings.Contains(ch.Why, "served by a small lane, the nearest category whose models fit it: "+tc.why) {
			t.Errorf("%s: why = %q", tc.name, ch.Why)
		}
		p := NewPlanner(tc.lanes, Options{})
		if a, err := p.Add(&it); err != nil || p.lanes[a.Lane] != huge {
			t.Errorf("%s: Add = %+v, %v", tc.name, a, err)
		}
	}

	// A prompt whose large lanes are merely unavailable is not downgraded.
	down := lane("b", "large", model.Large, 2_000_000, 2, 8)
	down.Available, down.Unavailable = false, "provider key not set (B_KEY)"
	if ch := Choose(it, []*Lane{down, huge}, Options{}); ch.Err == nil || !strings.Contains(ch.Err.Error(), "provider key not set") {
		t.Errorf("unavailable large lane: %s, err %v; want an error, not a downgrade", names(ch.Lanes), ch.Err)
	}
	// Nothing fits anywhere: the error names the context.
	small := lane("s", "small", model.Small, 8000, 0.1, 0.4)
	if ch := Choose(it, []*Lane{large, small}, Options{}); ch.Err == nil || !strings.Contains(ch.Err.Error(), "context too small") {
		t.Errorf("nothing fits: %s, err %v", names(ch.Lanes), ch.Err)
	}
	// A pinned model is never moved.
	if ch := Choose(it, []*Lane{large, huge}, Options{PinModel: "large"}); ch.Err == nil {
		t.Errorf("pinned to a model that is too small: served by %s", names(ch.Lanes))
	}
}
