package routing

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestHealthDefaults(t *testing.T) {
	want := HealthConfig{Alpha: DefaultHealthAlpha, Threshold: DefaultHealthThreshold, Cooldown: DefaultHealthCooldown}
	for _, c := range []HealthConfig{{}, {Alpha: -1, Threshold: 1, Cooldown: -time.Second}, {Alpha: 1.5, Threshold: math.NaN()}} {
		if got := NewHealth(c).Config(); got != want {
			t.Errorf("NewHealth(%+v).Config() = %+v, want %+v", c, got, want)
		}
	}
	c := HealthConfig{Alpha: 1, Threshold: 0.9, Cooldown: time.Minute}
	if got := NewHealth(c).Config(); got != c {
		t.Errorf("valid config changed: %+v", got)
	}
}

func TestHealthEWMA(t *testing.T) {
	h := NewHealth(HealthConfig{})
	if h.Score() != 1 || !h.Healthy(t0) || h.NeedsTrial(t0) || !h.NextTrial().IsZero() {
		t.Fatal("a new lane must be healthy with score 1 and no trial")
	}
	want := 1.0
	for i, ok := range []bool{false, false, true, false} {
		h.Record(ok, at(time.Duration(i)*time.Second))
		x := 0.0
		if ok {
			x = 1
		}
		want = 0.2*x + 0.8*want
		if !near(h.Score(), want) {
			t.Fatalf("after %d outcomes score = %v, want %v", i+1, h.Score(), want)
		}
	}
	// 1 → .8 → .64 → .712 → .5696: still healthy.
	if !h.Healthy(at(4 * time.Second)) {
		t.Fatalf("score %v should be healthy", h.Score())
	}
	h.Record(false, at(5*time.Second)) // .45568
	if h.Healthy(at(5*time.Second)) || h.Score() >= 0.5 {
		t.Fatalf("score %v should be unhealthy", h.Score())
	}
}

// fail drives h well below threshold (a success afterwards stays below it) with failures at now and
// returns the last failure time.
func fail(h *Health, now time.Time) time.Time {
	c := h.Config()
	for c.Alpha+(1-c.Alpha)*h.Score() >= c.Threshold {
		h.Record(false, now)
	}
	return now
}

func TestHealthCooldownAndTrial(t *testing.T) {
	const cool = 30 * time.Second
	// claimed returns a lane whose trial was claimed at due, after checking every step on the way.
	claimed := func(t *testing.T) (h *Health, due time.Time) {
		t.Helper()
		h = NewHealth(HealthConfig{Cooldown: cool})
		last := fail(h, t0)
		if h.Healthy(last.Add(cool-time.Nanosecond)) || h.NeedsTrial(last.Add(cool-time.Nanosecond)) {
			t.Fatal("healthy or trial due inside the cooldown")
		}
		if h.BeginTrial(last.Add(cool - time.Nanosecond)) {
			t.Fatal("trial claimed inside the cooldown")
		}
		if got := h.NextTrial(); !got.Equal(last.Add(cool)) {
			t.Fatalf("NextTrial = %v, want %v", got, last.Add(cool))
		}
		due = last.Add(cool)
		if !h.NeedsTrial(due) || !h.Healthy(due) {
			t.Fatal("trial not due at the end of the cooldown")
		}
		if !h.BeginTrial(due) {
			t.Fatal("BeginTrial refused a due trial")
		}
		if h.BeginTrial(due) || h.NeedsTrial(due) || h.Healthy(due) {
			t.Fatal("a claimed trial must block a second trial and hide the lane")
		}
		if got := h.NextTrial(); !got.Equal(due.Add(cool)) {
			t.Fatalf("NextTrial while a trial is out = %v, want the lease end %v", got, due.Add(cool))
		}
		return h, due
	}

	t.Run("trial success restores to threshold", func(t *testing.T) {
		h, due := claimed(t)
		now := due.Add(time.Second)
		h.Record(true, now)
		if h.Score() != h.Config().Threshold || !h.Healthy(now) || h.NeedsTrial(now) {
			t.Fatalf("after a successful trial: score %v healthy %v", h.Score(), h.Healthy(now))
		}
		if !h.NextTrial().IsZero() {
			t.Fatal("healthy lane has a NextTrial")
		}
		h.Record(false, now.Add(time.Second))
		if h.Healthy(now.Add(time.Second)) {
			t.Fatal("one failure on probation must make the lane unhealthy again")
		}
	})
	t.Run("trial failure restarts the cooldown", func(t *testing.T) {
		h, due := claimed(t)
		failedAt := due.Add(3 * time.Second)
		h.Record(false, failedAt)
		if h.Healthy(failedAt.Add(cool-time.Nanosecond)) || h.NeedsTrial(failedAt.Add(cool-time.Nanosecond)) {
			t.Fatal("healthy before the new cooldown ended")
		}
		if !h.NeedsTrial(failedAt.Add(cool)) || !h.NextTrial().Equal(failedAt.Add(cool)) {
			t.Fatal("trial not due after the new cooldown")
		}
	})
	t.Run("abandoned trial expires", func(t *testing.T) {
		h, due := claimed(t)
		if h.NeedsTrial(due.Add(cool - time.Nanosecond)) {
			t.Fatal("lease ended early")
		}
		if !h.NeedsTrial(due.Add(cool)) || !h.BeginTrial(due.Add(cool)) {
			t.Fatal("a trial whose outcome never came must not block the lane forever")
		}
	})
}

func TestHealthEarlySuccessDoesNotRestore(t *testing.T) {
	h := NewHealth(HealthConfig{Cooldown: 10 * time.Second})
	fail(h, t0)
	before := h.Score()
	h.Record(true, at(5*time.Second)) // a late in-flight success inside the cooldown
	if want := 0.2 + 0.8*before; !near(h.Score(), want) {
		t.Fatalf("score %v, want plain EWMA %v", h.Score(), want)
	}
	if h.Healthy(at(5 * time.Second)) {
		t.Fatal("healthy inside the cooldown")
	}
}

func TestHealthOutOfOrderFailure(t *testing.T) {
	h := NewHealth(HealthConfig{Cooldown: 10 * time.Second})
	fail(h, at(20*time.Second))
	h.Record(false, at(5*time.Second)) // reported late, stamped earlier
	if h.NeedsTrial(at(29 * time.Second)) {
		t.Fatal("an older failure shortened the cooldown")
	}
	if !h.NeedsTrial(at(30 * time.Second)) {
		t.Fatal("trial not due 10s after the latest failure")
	}
}

func TestHealthRecordErr(t *testing.T) {
	for _, e := range neutral {
		h := NewHealth(HealthConfig{})
		h.Record(false, t0)
		s := h.Score()
		if h.RecordErr(e, t0) || h.Score() != s {
			t.Errorf("%v changed the score (%v → %v)", e, s, h.Score())
		}
	}
	for _, e := range laneFailures {
		h := NewHealth(HealthConfig{})
		if !h.RecordErr(e, t0) || !near(h.Score(), 0.8) {
			t.Errorf("%v: score %v, want 0.8", e, h.Score())
		}
	}
	h := NewHealth(HealthConfig{})
	h.Record(false, t0)
	if !h.RecordErr(nil, t0) || !near(h.Score(), 0.84) {
		t.Errorf("nil error: score %v, want 0.84", h.Score())
	}
}

// healthModel is the documented rules, written out independently.
type healthModel struct {
	alpha, thr  float64
	cool        time.Duration
	score       float64
	lastFailure time.Time
	lease       time.Time
}

func (m *healthModel) due(now time.Time) bool {
	return m.score < m.thr && !now.Before(m.lastFailure.Add(m.cool)) && !now.Before(m.lease)
}

// TestHealthMatchesModel runs random outcome streams with random clocks against the model, checking
// the score, Healthy, NeedsTrial and NextTrial after every step, plus invariants: the score stays in
// [0, 1], successes never lower it and failures never raise it.
func TestHealthMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for run := range 300 {
		cfg := HealthConfig{Alpha: 0.01 + 0.99*r.Float64(), Threshold: 0.05 + 0.9*r.Float64(),
			Cooldown: time.Duration(1+r.IntN(60)) * time.Second}
		h := NewHealth(cfg)
		m := &healthModel{alpha: cfg.Alpha, thr: cfg.Threshold, cool: cfg.Cooldown, score: 1}
		now := t0
		for step := range 300 {
			now = now.Add(time.Duration(r.Int64N(int64(cfg.Cooldown))))
			before := h.Score()
			switch op := r.IntN(5); op {
			case 0, 1:
				ok := op == 0
				h.Record(ok, now)
				x := 0.0
				if ok {
					x = 1
				}
				m.score = m.alpha*x + (1-m.alpha)*m.score
				m.lease = time.Time{}
				if ok {
					if m.score < m.thr && !now.Before(m.lastFailure.Add(m.cool)) {
						m.score = m.thr
					}
					if h.Score() < before {
						t.Fatalf("run %d step %d: success lowered the score %v → %v", run, step, before, h.Score())
					}
				} else {
					m.lastFailure = now
					if h.Score() > before {
						t.Fatalf("run %d step %d: failure raised the score %v → %v", run, step, before, h.Score())
					}
				}
			case 2:
				want := m.due(now)
				if got := h.BeginTrial(now); got != want {
					t.Fatalf("run %d step %d: BeginTrial = %v, model %v", run, step, got, want)
				}
				if want {
					m.lease = now.Add(m.cool)
				}
			}
			if s := h.Score(); !near(s, m.score) || s < 0 || s > 1 {
				t.Fatalf("run %d step %d: score %v, model %v", run, step, s, m.score)
			}
			if got, want := h.NeedsTrial(now), m.due(now); got != want {
				t.Fatalf("run %d step %d: NeedsTrial = %v, model %v", run, step, got, want)
			}
			if got, want := h.Healthy(now), m.score >= m.thr || m.due(now); got != want {
				t.Fatalf("run %d step %d: Healthy = %v, model %v", run, step, got, want)
			}
			wantNext := time.Time{}
			if m.score < m.thr {
				wantNext = m.lastFailure.Add(m.cool)
				if m.lease.After(wantNext) {
					wantNext = m.lease
				}
			}
			if got := h.NextTrial(); !got.Equal(wantNext) {
				t.Fatalf("run %d step %d: NextTrial = %v, model %v", run, step, got, wantNext)
			}
		}
	}
}

// TestHealthConcurrentTrialClaim checks, under -race, that many dispatchers racing for a due trial
// get exactly one.
func TestHealthConcurrentTrialClaim(t *testing.T) {
	h := NewHealth(HealthConfig{Cooldown: time.Second})
	fail(h, t0)
	due := at(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	claimed := 0
	for range 64 {
		wg.Go(func() {
			_ = h.Healthy(due)
			if h.BeginTrial(due) {
				mu.Lock()
				claimed++
				mu.Unlock()
			}
			_ = h.Score()
		})
	}
	wg.Wait()
	if claimed != 1 {
		t.Fatalf("%d trials claimed, want 1", claimed)
	}
}
