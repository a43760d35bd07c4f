package progress_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/internal/testkit"
	"github.com/llmbatch/llmbatch/pkg/progress"
)

// Logs go through the display (the text handler writes to it) while prompts finish concurrently:
// on the final screen every log line stands whole on its own line, and nothing else shares a line
// with a bar.
func TestLogLinesNeverInterleaveWithTheBar(t *testing.T) {
	var buf testkit.SyncBuffer
	d := progress.New(&buf, 2000, progress.Options{Enabled: true, Throttle: time.Nanosecond})
	logger := slog.New(progress.NewFoldHandler(slog.NewTextHandler(d, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}), nil, 0))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				d.Add(progress.Outcome{OK: true, InputTokens: 10})
				if i%5 == 0 {
					logger.Info("prompt done", "worker", w, "i", i)
				}
			}
		})
	}
	wg.Wait()
	screen := testkit.Screen(buf.String())
	logLine := regexp.MustCompile(`^level=INFO msg="prompt done" worker=\d i=\d+$`)
	bar := regexp.MustCompile(`req/s.*\(\d+/2000\)`)
	logs := 0
	for i, l := range screen {
		switch {
		case logLine.MatchString(l):
			logs++
		case i == len(screen)-1 && bar.MatchString(l) && !strings.Contains(l, "level="):
			// the bar, redrawn below the last log line
		default:
			t.Fatalf("screen line %d is neither a whole log line nor the bar: %q", i, l)
		}
	}
	if logs != 400 {
		t.Errorf("%d log lines on screen, want 400", logs)
	}
	if last := screen[len(screen)-1]; utf8.RuneCountInString(last) >= 80 {
		t.Errorf("the bar is %d columns wide: it would wrap on an 80-column terminal: %q", utf8.RuneCountInString(last), last)
	}
	if !strings.Contains(screen[len(screen)-1], "(2000/2000)") {
		t.Errorf("last line %q, want the bar at 2000/2000", screen[len(screen)-1])
	}
}

func TestFoldHandlerFoldsRepeatedWarnings(t *testing.T) {
	c := newClock()
	var buf testkit.SyncBuffer
	h := progress.NewFoldHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}), c.now, 10*time.Second)
	log := slog.New(h).With("provider", "p")
	for i := range 41 {
		log.Warn("connection refused", "addr", "127.0.0.1:9", "id", i)
		log.Info("info is never folded", "id", i)
	}
	log.Warn("another warning")
	if got := strings.Count(buf.String(), "connection refused"); got != 1 {
		t.Fatalf("the repeated warning was written %d times within the window, want once:\n%s", got, buf.String())
	}
	if got := strings.Count(buf.String(), "info is never folded"); got != 41 {
		t.Errorf("%d info lines, want 41", got)
	}
	c.advance(11 * time.Second)
	log.Warn("connection refused", "addr", "127.0.0.1:9", "id", 41)
	want := "level=WARN msg=\"…and 40 more: connection refused\" provider=p\n" +
		"level=WARN msg=\"connection refused\" provider=p addr=127.0.0.1:9 id=41\n"
	if !strings.HasSuffix(buf.String(), want) {
		t.Errorf("after the window, want the count then the warning:\n%s", buf.String())
	}
	log.Warn("connection refused", "id", 42)
	log.Warn("connection refused", "id", 43)
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(buf.String(), "level=WARN msg=\"…and 2 more: connection refused\" provider=p\n") {
		t.Errorf("Flush did not report the 2 pending repeats:\n%s", buf.String())
	}
	if strings.Count(buf.String(), "another warning") != 1 || strings.Contains(buf.String(), "more: another") {
		t.Errorf("a different warning is its own:\n%s", buf.String())
	}
}
