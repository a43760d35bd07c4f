package ratelimit

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestLogStaysBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lane := New("p/m", Limits{}, time.Now) // unknown limits: nothing throttles, the log still counts
		for range 2 * 60 * 100 {               // 2,000 requests a second for two minutes
			for range 20 {
				tk, err := lane.Wait(t.Context(), 100)
				if err != nil {
					t.Fatal(err)
				}
				tk.Settle(100)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lane.mu.Lock()
		n := len(lane.win.entries)
		lane.mu.Unlock()
		if max := int(logSpan/logQuantum) + 2; n > max {
			t.Errorf("log holds %d entries, want <= %d whatever the rate", n, max)
		}
		if s := lane.Snapshot(); s.MinuteRequests < 119_000 || s.MinuteRequests > 120_000 {
			t.Errorf("minute requests %d, want ~120000", s.MinuteRequests)
		}
	})
}

func TestWindowReadyAt(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	w := window{span: time.Minute, quantum: 0}
	w.add(t0, 100)
	w.add(t0.Add(10*time.Second), 200)
	w.add(t0.Add(20*time.Second), 300)
	now := t0.Add(30 * time.Second)
	for _, tc := range []struct {
		n, rpm, tpm int
		want        time.Duration // after t0
	}{
		{1, 4, 0, 30 * time.Second},       // fits now
		{1, 3, 0, 60 * time.Second},       // the first must leave
		{1, 1, 0, 80 * time.Second},       // all must leave
		{400, 0, 1000, 30 * time.Second},  // 600+400 fits
		{401, 0, 1000, 60 * time.Second},  // 500+401
		{600, 0, 1000, 70 * time.Second},  // 300+600
		{1000, 0, 1000, 80 * time.Second}, // an empty window
		{100, 10, 699, 60 * time.Second},  // tokens bind
		{0, 2, 10_000, 70 * time.Second},  // requests bind
	} {
		if got := w.readyAt(now, tc.n, tc.rpm, tc.tpm).Sub(t0); got != tc.want {
			t.Errorf("readyAt(n=%d, rpm=%d, tpm=%d) = t0+%v, want t0+%v", tc.n, tc.rpm, tc.tpm, got, tc.want)
		}
	}
	w.insertPhantom(t0.Add(5*time.Second), 1, 0)
	if got := w.readyAt(now, 1, 3, 0).Sub(t0); got != 65*time.Second {
		t.Errorf("with a phantom at t0+5s: t0+%v, want t0+65s", got)
	}
	w.prune(t0.Add(65 * time.Second))
	if w.reqs != 2 || w.tokens != 500 || len(w.entries) != 2 {
		t.Errorf("after pruning: %d reqs %d tokens %d entries, want 2, 500, 2", w.reqs, w.tokens, len(w.entries))
	}
}
