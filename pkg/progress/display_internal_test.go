package progress

import (
	"io"
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	d := New(io.Discard, 10, Options{Enabled: true, Now: func() time.Time { return now }, Width: 200})
	if got, want := d.describe(now), "ETA --, $0, 0.0 req/s, 0 tok/s"; got != want {
		t.Errorf("at start: %q, want %q", got, want)
	}
	d.Skip(2) // resumed: moves the bar, not the rates
	now = t0.Add(time.Second)
	d.Add(Outcome{OK: true, InputTokens: 100, OutputTokens: 50, CostUSD: 0.01})
	d.Add(Outcome{OK: false, InputTokens: 100, OutputTokens: 50, CostUSD: 0.01})
	// 2 prompts in 1 s: 6 left take 3 s.
	if got, want := d.describe(now), "ETA 3s, 1 failed, $0.02, 2.0 req/s, 300 tok/s"; got != want {
		t.Errorf("after 2 prompts: %q, want %q", got, want)
	}
	for range 3000 {
		d.Add(Outcome{OK: true, InputTokens: 1000, OutputTokens: 1000})
	}
	now = t0.Add(2 * time.Second)
	if got, want := d.describe(now), "ETA 0s, 1 failed, $0.02, 1501.0 req/s, 3.0M tok/s"; got != want {
		t.Errorf("beyond the total: %q, want %q", got, want)
	}
}

// On a narrow terminal the description is cut from its end, so the bar's line never wraps.
func TestDescribeFitsTheWidth(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d := New(io.Discard, 3000, Options{Enabled: true, Now: func() time.Time { return now }, Width: 60})
	now = now.Add(time.Second)
	d.Add(Outcome{OK: false, InputTokens: 100, OutputTokens: 50, CostUSD: 0.01})
	// 60 columns less the bar, count and cursor leave 18 for the description.
	if got, want := d.describe(now), "ETA 49m59s, 1 fai…"; got != want {
		t.Errorf("at 60 columns: %q, want %q", got, want)
	}
}
