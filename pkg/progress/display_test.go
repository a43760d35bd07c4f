package progress_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/progress"
)

// syncBuffer is a bytes.Buffer safe for the race detector.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDisplayDisabledWritesNothing(t *testing.T) {
	var buf syncBuffer
	d := progress.New(&buf, 10, progress.Options{Enabled: false})
	d.Skip(2)
	for range 8 {
		d.Add(progress.Outcome{OK: true, InputTokens: 10})
	}
	d.Finish()
	if buf.String() != "" {
		t.Errorf("disabled display wrote %q", buf.String())
	}
	// Logs still go through.
	if _, err := d.Write([]byte("level=INFO msg=hello\n")); err != nil || buf.String() != "level=INFO msg=hello\n" {
		t.Errorf("Write on a disabled display: %q, %v", buf.String(), err)
	}
}

func TestDisplayShowsProgressAndFinalLine(t *testing.T) {
	c := newClock()
	var buf syncBuffer
	d := progress.New(&buf, 10, progress.Options{Enabled: true, Now: c.now})
	d.Skip(2) // resumed
	for i := range 8 {
		c.advance(500 * time.Millisecond)
		d.Add(progress.Outcome{OK: i != 3, InputTokens: 100, OutputTokens: 50, CostUSD: 0.01})
	}
	// The last prompt always redraws (the library renders on reaching the total despite the throttle).
	if out := buf.String(); !strings.Contains(out, "2.0 req/s, 300 tok/s, $0.0800, ETA 0s, 1 failed") || !strings.Contains(out, "(10/10)") {
		t.Errorf("bar lacks rates, cost, failures or count:\n%q", out)
	}
	if _, err := d.Write([]byte("a log line\n")); err != nil {
		t.Fatal(err)
	}
	d.Finish()
	d.Add(progress.Outcome{OK: true}) // after Finish: nothing drawn
	out := buf.String()
	if !strings.Contains(out, "\ra log line\n\r2.0 req/s") {
		t.Errorf("log line not written on a cleared line with the bar redrawn below it:\n%q", out)
	}
	want := "10/10 done (1 failed) in 4s, 2.0 req/s, 300 tok/s, $0.0800\n"
	if !strings.HasSuffix(out, want) {
		t.Errorf("output does not end with the final line %q:\n%q", want, out)
	}
}

func TestDisplayConcurrentAdds(t *testing.T) {
	var buf syncBuffer
	d := progress.New(&buf, 4000, progress.Options{Enabled: true})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				d.Add(progress.Outcome{OK: true, InputTokens: 1})
			}
		})
	}
	wg.Wait()
	d.Finish()
	if out := buf.String(); !strings.Contains(out, "4000/4000 done in ") {
		t.Errorf("final line missing after concurrent adds:\n%q", out[max(0, len(out)-200):])
	}
}
