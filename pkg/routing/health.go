package routing

import (
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/pkg/retry"
)

// Default health settings, used for zero or out-of-range HealthConfig fields.
const (
	DefaultHealthAlpha     = 0.2
	DefaultHealthThreshold = 0.5
	DefaultHealthCooldown  = 30 * time.Second
)

// HealthConfig tunes a Health score. Zero or out-of-range fields take the Default* values.
type HealthConfig struct {
	Alpha     float64       // weight of the newest outcome in the moving average, in (0, 1]
	Threshold float64       // a score at or above it is healthy, in (0, 1)
	Cooldown  time.Duration // how long after its last failure an unhealthy lane waits for a trial
}

// Health is one lane's exponentially weighted success score, built from real outcomes only (no
// background probing). The score starts at 1 and each outcome moves it: s ← α·x + (1−α)·s with x = 1
// for a success and 0 for a failure.
//
// A lane is healthy while its score is at or above Threshold. Below it the lane is unhealthy until
// Cooldown has passed since its last failure; then a trial is due (NeedsTrial), and Healthy reports
// true again so the lane can win work. The dispatcher that sends to such a lane claims the trial with
// BeginTrial, which makes Healthy false for everyone else until the outcome is recorded (or, if it
// never is, for another Cooldown). A success after the cooldown restores the score to Threshold —
// so one more failure makes the lane unhealthy again — and a failure starts a new cooldown.
//
// Every decision takes the time explicitly; a Health never reads the clock. It is safe for
// concurrent use.
type Health struct {
	cfg HealthConfig

	mu          sync.Mutex
	score       float64
	lastFailure time.Time // zero: never failed
	trialUntil  time.Time // a claimed trial blocks further trials until this time or its outcome
}

// NewHealth returns a healthy lane score (1.0) with the given settings.
func NewHealth(cfg HealthConfig) *Health {
	if !(cfg.Alpha > 0 && cfg.Alpha <= 1) {
		cfg.Alpha = DefaultHealthAlpha
	}
	if !(cfg.Threshold > 0 && cfg.Threshold < 1) {
		cfg.Threshold = DefaultHealthThreshold
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultHealthCooldown
	}
	return &Health{cfg: cfg, score: 1}
}

// Config returns the settings in effect, defaults filled in.
func (h *Health) Config() HealthConfig { return h.cfg }

// Record adds one outcome observed at now. A success arriving at least Cooldown after the last
// failure lifts the score to at least Threshold (the lane has proved itself); a failure starts a
// new cooldown. Either ends a claimed trial.
func (h *Health) Record(success bool, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	x := 0.0
	if success {
		x = 1
	}
	h.score = h.cfg.Alpha*x + (1-h.cfg.Alpha)*h.score
	h.trialUntil = time.Time{}
	if !success {
		if now.After(h.lastFailure) {
			h.lastFailure = now
		}
		return
	}
	if h.score < h.cfg.Threshold && h.cooledDown(now) {
		h.score = h.cfg.Threshold
	}
}

// RecordErr records the outcome of an attempt from its error: nil is a success, a lane failure
// (retry.Class.LaneFailure: server_error, overloaded, timeout, network, invalid_response) is a
// failure, and anything else — rate limits, cancellations, request or account errors — says nothing
// about the lane's health and is ignored. It reports whether the outcome was recorded.
func (h *Health) RecordErr(err error, now time.Time) bool {
	if err == nil {
		h.Record(true, now)
		return true
	}
	if retry.Classify(err).LaneFailure() {
		h.Record(false, now)
		return true
	}
	return false
}

// Score returns the current moving-average success score in [0, 1].
func (h *Health) Score() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.score
}

// Healthy reports whether the lane should be treated as healthy at now: its score is at or above
// Threshold, or a trial is due (NeedsTrial).
func (h *Health) Healthy(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.score >= h.cfg.Threshold || h.trialDue(now)
}

// NeedsTrial reports whether the lane is below Threshold, Cooldown has passed since its last failure,
// and no claimed trial is outstanding: one request may go to find out whether it has recovered.
func (h *Health) NeedsTrial(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trialDue(now)
}

// BeginTrial claims the due trial at now: it returns true, and makes NeedsTrial and Healthy false
// until the next Record or until Cooldown has passed (a trial whose outcome is never recorded does
// not block the lane forever). It returns false, changing nothing, when no trial is due — including
// when another caller has claimed it.
func (h *Health) BeginTrial(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.trialDue(now) {
		return false
	}
	h.trialUntil = now.Add(h.cfg.Cooldown)
	return true
}

// NextTrial returns the earliest time at which a trial may be due, so a dispatcher can wait rather
// than poll, or the zero time when the score is at or above Threshold (no trial needed).
func (h *Health) NextTrial() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.score >= h.cfg.Threshold {
		return time.Time{}
	}
	at := h.lastFailure.Add(h.cfg.Cooldown)
	if h.trialUntil.After(at) {
		at = h.trialUntil
	}
	return at
}

// cooledDown reports whether Cooldown has passed since the last failure. Callers hold mu.
func (h *Health) cooledDown(now time.Time) bool {
	return !now.Before(h.lastFailure.Add(h.cfg.Cooldown))
}

// trialDue is NeedsTrial with mu held.
func (h *Health) trialDue(now time.Time) bool {
	return h.score < h.cfg.Threshold && h.cooledDown(now) && !now.Before(h.trialUntil)
}
