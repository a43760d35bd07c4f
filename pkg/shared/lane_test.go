package shared

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmbatch/llmbatch/internal/testkit"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
	"github.com/llmbatch/llmbatch/pkg/shared/redistest"
)

const testKey = "sk-test-0123456789abcdef-secret"

func testInfo() LaneInfo {
	return LaneInfo{Name: "sim/m1", Provider: "sim", BaseURL: "http://127.0.0.1:8089/v1/", Model: "m1", APIKey: testKey}
}

func open(t *testing.T, url string, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// admitAll reserves n admissions of tokens each without sleeping and returns their slots as offsets
// from the first reply's server time, in ms.
func admitAll(t *testing.T, l *Lane, n, tokens int) []int64 {
	t.Helper()
	var at []int64
	for range n {
		r, err := l.call(context.Background(), "admit", tokens)
		if err != nil || r.status != 0 {
			t.Fatalf("admit: status %d, %v", r.status, err)
		}
		at = append(at, l.v.at.Add(r.wait).UnixMilli())
	}
	return at
}

// maxInWindow returns the most slots that fall in any window of span ms.
func maxInWindow(at []int64, span int64) int {
	s := append([]int64(nil), at...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	best, j := 0, 0
	for i := range s {
		for s[i]-s[j] >= span {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func TestAdmitRPMWindowAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{RPM: 600})
	b := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{RPM: 600})
	if a.ID() != b.ID() {
		t.Fatalf("same base URL, model and key gave lanes %s and %s", a.ID(), b.ID())
	}
	// Two processes alternate 1,300 admissions: more than two minutes' worth at 600 RPM.
	var at []int64
	for i := range 650 {
		_ = i
		at = append(at, admitAll(t, a, 1, 10)...)
		at = append(at, admitAll(t, b, 1, 10)...)
	}
	if got := maxInWindow(at, 60000); got > 600 {
		t.Errorf("%d admissions in one 60 s window, limit 600", got)
	}
	// Pacing: the burst is one second's worth (10), then one per 61 s/600 ≈ 102 ms.
	if got := maxInWindow(at, 1000); got > 21 {
		t.Errorf("%d admissions within one second, want the burst of 10 plus ~10 paced", got)
	}
	span := at[len(at)-1] - at[0]
	if span < 118_000 || span > 135_000 {
		t.Errorf("1,300 admissions at 600 RPM span %d ms, want about 61 s × 1290/600 ≈ 131 s", span)
	}
	if _, err := a.call(context.Background(), "beat"); err != nil {
		t.Fatal(err)
	}
	if p := a.Processes(); p != 2 {
		t.Errorf("processes seen = %d, want 2", p)
	}
}

func TestAdmitTPMAndTooLarge(t *testing.T) {
	srv := redistest.Start(t)
	l := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{TPM: 6000})
	at := admitAll(t, l, 60, 1000) // 60,000 tokens: ten minutes' worth
	tokensIn := func(lo, hi int64) int {
		n := 0
		for _, x := range at {
			if x >= lo && x < hi {
				n += 1000
			}
		}
		return n
	}
	for _, start := range at {
		if got := tokensIn(start, start+60000); got > 6000 {
			t.Fatalf("%d tokens in the minute from %d, TPM 6000", got, start)
		}
	}
	_, err := l.Wait(context.Background(), 6001)
	if !errors.Is(err, ratelimit.ErrTooLarge) {
		t.Fatalf("6,001 tokens with TPM 6,000: %v, want ErrTooLarge", err)
	}
}

func TestDailyLimitCancelAndExhaust(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{RPD: 2})
	b := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{RPD: 2})
	ctx := context.Background()
	t1, err := a.Wait(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := b.Wait(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(ctx, 5); !errors.Is(err, ratelimit.ErrDailyExhausted) {
		t.Fatalf("third request of RPD 2 over two processes: %v, want ErrDailyExhausted", err)
	}
	if d := b.Delay(5); d != ratelimit.Never {
		t.Errorf("Delay after the day is spent = %v, want Never", d)
	}
	t2.Cancel() // never sent: the day gets it back
	if _, err := a.Wait(ctx, 5); err != nil {
		t.Fatalf("after a cancel: %v", err)
	}
	t1.Settle(5)
	if _, err := b.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}
	if s := b.Snapshot(); s.DayRequests != 2 || s.DayRemainingRequests != 0 || !s.DayExhausted {
		t.Errorf("snapshot = %+v, want 2 requests used of 2", s)
	}

	c := open(t, srv.URL(), Options{}).Lane(LaneInfo{Provider: "sim", BaseURL: "http://x/v1", Model: "m2", APIKey: "k"}, ratelimit.Limits{})
	if _, err := c.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.ExhaustDay(time.Time{})
	if _, err := c.Wait(ctx, 1); !errors.Is(err, ratelimit.ErrDailyExhausted) {
		t.Fatalf("after ExhaustDay: %v", err)
	}
}

func TestLearnedLimitsAndPausesAreShared(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{})
	b := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{})

	tk, err := a.Wait(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	a.Observe(provider.RateLimits{HasRequests: true, LimitRequests: 300, RemainingRequests: 299,
		ResetRequests: 200 * time.Millisecond, HasTokens: true, LimitTokens: 90000, RemainingTokens: 89990})
	tk.Settle(12) // carries the headers: no extra round trip
	if _, err := b.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}
	s := b.Snapshot()
	if s.Limits.RPM != 300 || s.Limits.TPM != 90000 || s.Source.RPM != ratelimit.SourceHeaders {
		t.Fatalf("process B sees %+v from %+v, want the 300 RPM / 90,000 TPM process A learned", s.Limits, s.Source)
	}
	if s.MinuteTokens != 12 {
		t.Errorf("window tokens %d, want 12 (the settle's under-estimate charged)", s.MinuteTokens)
	}

	// A 429 with Retry-After 3 s in A pauses B's next admission.
	tk, err = a.Wait(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	tk.RateLimited(provider.RateLimits{RetryAfter: 3 * time.Second})
	r, err := b.call(ctx, "admit", 10)
	if err != nil {
		t.Fatal(err)
	}
	if r.wait < 2900*time.Millisecond {
		t.Errorf("B's admission after A's 429 with Retry-After 3 s is due in %v", r.wait)
	}
	if st := b.Snapshot(); st.PausedUntil.IsZero() || st.RateLimited != 1 {
		t.Errorf("B's snapshot: paused until %v, %d 429s; want paused, 1", st.PausedUntil, st.RateLimited)
	}

	// An unexplained 429 (no headers) lowers the shared RPM by AIMD.
	tk2, err := a.Wait(ctx, 10) // waits out the pause
	if err != nil {
		t.Fatal(err)
	}
	tk2.RateLimited(provider.RateLimits{RetryAfter: time.Millisecond})
	if _, err := b.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}
	if s := b.Snapshot(); s.Source.RPM != ratelimit.SourceAdaptive || s.Limits.RPM >= 300 {
		t.Errorf("after an unexplained 429: RPM %d from %v, want below 300, adaptive", s.Limits.RPM, s.Source.RPM)
	}
}

func TestWaitReschedulesOnPauseLearnedWhileWaiting(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{RPM: 60}) // burst 1, then ~1 s apart
	b := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{RPM: 60})
	tb, err := b.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *Ticket)
	go func() {
		tk, err := a.Wait(ctx, 1) // slot about a second away
		if err != nil {
			t.Error(err)
		}
		done <- tk
	}()
	// B is rate limited with a 2 s pause; A's waiter learns it from A's next reply.
	for a.Snapshot().Waiting == 0 {
		time.Sleep(time.Millisecond) // until A's request sleeps on its slot
	}
	tb.RateLimited(provider.RateLimits{RetryAfter: 2 * time.Second})
	if _, err := a.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}
	paused := a.Snapshot().PausedUntil
	tk := <-done
	if tk.At().Add(jitter).Before(paused) {
		t.Errorf("A's waiting request went at %v, before the pause B published ended (%v)", tk.At(), paused)
	}
}

func TestKeyNeverStored(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), Options{Job: "j"})
	l := s.Lane(testInfo(), ratelimit.Limits{RPM: 100})
	tk, err := l.Wait(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	tk.Settle(3)
	other := s.Lane(LaneInfo{Provider: "sim", BaseURL: "http://127.0.0.1:8089/v1", Model: "m1", APIKey: "another"}, ratelimit.Limits{})
	if other.ID() == l.ID() {
		t.Fatal("another API key shares the lane")
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	dump := &bytes.Buffer{}
	for _, k := range keys {
		typ := rdb.Type(ctx, k).Val()
		fmt.Fprintln(dump, k, typ)
		switch typ {
		case "hash":
			fmt.Fprintln(dump, rdb.HGetAll(ctx, k).Val())
		case "string":
			fmt.Fprintln(dump, rdb.Get(ctx, k).Val())
		case "set":
			fmt.Fprintln(dump, rdb.SMembers(ctx, k).Val())
		case "zset":
			fmt.Fprintln(dump, rdb.ZRange(ctx, k, 0, -1).Val())
		}
	}
	if strings.Contains(dump.String(), "secret") || strings.Contains(dump.String(), testKey) {
		t.Fatalf("the API key is in Redis:\n%s", dump)
	}
	if !strings.Contains(dump.String(), "http://127.0.0.1:8089/v1") {
		t.Errorf("the lane's base URL is not registered:\n%s", dump)
	}
}

func TestOpenUnreachableMasksPassword(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	url := "redis://:hunter2pass@" + srv.Addr() + "/0"
	_, err := Open(context.Background(), url, Options{})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Open on a stopped server: %v, want ErrUnreachable", err)
	}
	if strings.Contains(err.Error(), "hunter2pass") || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("error %q must name the server and mask the password", err)
	}
}

func TestRedisLostFallsBackAndRejoins(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	logs := &testkit.SyncBuffer{}
	a := open(t, srv.URL(), Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	la := a.Lane(testInfo(), ratelimit.Limits{RPM: 6000, TPM: 600000})
	lb := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{RPM: 6000, TPM: 600000})
	for _, l := range []*Lane{la, lb} {
		tk, err := l.Wait(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		tk.Settle(10)
	}
	if _, err := la.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	for range 20 { // every admission succeeds, on local limits after the first failure
		tk, err := la.Wait(ctx, 10)
		if err != nil {
			t.Fatalf("Wait with Redis gone: %v", err)
		}
		tk.Settle(10)
	}
	if !a.Down() {
		t.Fatal("store does not know Redis is gone")
	}
	if s := la.Snapshot(); s.Limits.RPM != 3000 || s.Limits.TPM != 300000 {
		t.Errorf("local limits %+v, want half of 6,000 RPM / 600,000 TPM (two processes seen)", s.Limits)
	}
	if n := strings.Count(logs.String(), "Redis lost"); n != 1 {
		t.Errorf("said %d times that Redis was lost, want once:\n%s", n, logs)
	}

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for a.Down() && time.Now().Before(deadline) {
		tk, err := la.Wait(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		tk.Settle(10)
		time.Sleep(50 * time.Millisecond)
	}
	if a.Down() {
		t.Fatal("did not rejoin within 10 s of Redis coming back")
	}
	if !strings.Contains(logs.String(), "Redis is back") {
		t.Errorf("no rejoin message:\n%s", logs)
	}
	// The restarted server knows what A admitted locally in the last minute.
	if _, err := la.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}
	if s := la.Snapshot(); s.MinuteRequests < 20 || s.Limits.RPM != 6000 {
		t.Errorf("after rejoining: %d requests in the window, RPM %d; want ≥ 20 seeded, 6,000", s.MinuteRequests, s.Limits.RPM)
	}
}

func TestProbeBeforeTheFirstAnswer(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	l := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{}) // nothing known
	got := make(chan *Ticket, 10)
	for range 10 {
		go func() {
			tk, err := l.Wait(ctx, 10)
			if err != nil {
				t.Error(err)
			}
			got <- tk
		}()
	}
	first := make([]*Ticket, 0, probeTickets)
	for range probeTickets {
		first = append(first, <-got)
	}
	if _, err := l.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}
	if n := l.Snapshot().MinuteRequests; n != probeTickets {
		t.Fatalf("%d requests admitted before the first answer, want the probe's %d", n, probeTickets)
	}
	// The first answer teaches 120 RPM (burst 2, then one per 508 ms): the other six are paced.
	l.Observe(provider.RateLimits{HasRequests: true, LimitRequests: 120, RemainingRequests: 116})
	first[0].Settle(10)
	var rest []time.Time
	for range 6 {
		rest = append(rest, (<-got).At())
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Before(rest[j]) })
	if span := rest[5].Sub(rest[0]); span < 1500*time.Millisecond {
		t.Errorf("six requests after learning 120 RPM span %v, want them paced (≥ 1.5 s)", span)
	}
}

func TestBreakerStateIsShared(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{})
	b := open(t, srv.URL(), Options{}).Lane(testInfo(), ratelimit.Limits{})
	if !b.BreakerOpenUntil().IsZero() {
		t.Fatal("a new lane's breaker is open")
	}
	a.PublishBreaker(time.Now().Add(30 * time.Second))
	if _, err := b.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}
	if until := b.BreakerOpenUntil(); until.Before(time.Now().Add(29 * time.Second)) {
		t.Errorf("B sees the breaker open until %v, want about 30 s from now", until)
	}
	a.PublishBreaker(time.Time{}) // closed again
	if _, err := b.call(ctx, "beat"); err != nil {
		t.Fatal(err)
	}
	if !b.BreakerOpenUntil().IsZero() {
		t.Error("B still sees the breaker open after A closed it")
	}
}
