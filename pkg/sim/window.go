package sim

import (
	"time"
)

// The rate-limit windows. An admission at time t counts in the window at time now while
// now-t < the window's length, so it leaves exactly at t+length.
const (
	// MinuteWindow is the sliding window of RPM and TPM.
	MinuteWindow = time.Minute
	// DayWindow is the sliding window of RPD.
	DayWindow = 24 * time.Hour
)

// Rejection reasons of the limiter.
const (
	reasonRequests    = "requests"            // RPM
	reasonTokens      = "tokens"              // TPM
	reasonDay         = "requests_per_day"    // RPD
	reasonTooLarge    = "request_too_large"   // cost alone exceeds TPM: never admissible
	reasonConcurrency = "concurrent_requests" // beyond sim.max_concurrency
)

// limits is what the simulator enforces for one (provider, model); zero means unlimited.
//
// rpm and tpm are per-minute figures. They are enforced over a sliding window of length window
// (MinuteWindow when zero), which admits the figure's share of it (rpm·window/60), and, when quantum
// is set, also over fixed sub-windows of length quantum aligned on the Unix epoch, each admitting
// rpm·quantum/60 (OpenAI's "60,000 requests/minute may be enforced as 1,000 requests/second").
// The headers state the per-minute figures whatever the window, unless windowHeaders asks for the
// window's own figures (limit 600 for a 10 s window of 3,600 RPM).
type limits struct {
	rpm, tpm, rpd int
	hideHeaders   bool
	window        time.Duration
	quantum       time.Duration
	windowHeaders bool
}

// span is the sliding window's length.
func (l limits) span() time.Duration {
	if l.window > 0 {
		return l.window
	}
	return MinuteWindow
}

// share is a per-minute figure's share of d, at least 1 (0 stays unlimited).
func share(perMinute int, d time.Duration) int {
	if perMinute <= 0 {
		return 0
	}
	return max(1, int(int64(perMinute)*int64(d)/int64(time.Minute)))
}

// slot is one admitted request: its admission time (Unix ns) and token cost.
type slot struct {
	at     int64
	tokens int
}

// queue is a FIFO of slots in admission order with the sum of their tokens.
type queue struct {
	s    []slot
	head int
	sum  int
}

func (q *queue) len() int { return len(q.s) - q.head }

func (q *queue) oldest() slot { return q.s[q.head] }

// nth returns the i-th oldest slot (0 = oldest).
func (q *queue) nth(i int) slot { return q.s[q.head+i] }

func (q *queue) push(at int64, tokens int) {
	if q.head >= 1024 && q.head*2 >= len(q.s) {
		n := copy(q.s, q.s[q.head:])
		q.s = q.s[:n]
		q.head = 0
	}
	q.s = append(q.s, slot{at, tokens})
	q.sum += tokens
}

// evict drops the slots admitted at or before cutoff.
func (q *queue) evict(cutoff int64) {
	for q.head < len(q.s) && q.s[q.head].at <= cutoff {
		q.sum -= q.s[q.head].tokens
		q.head++
	}
	if q.head == len(q.s) {
		q.s, q.head = q.s[:0], 0
	}
}

// limiter enforces RPM/TPM over MinuteWindow and RPD over DayWindow for one (provider, model).
// It is not safe for concurrent use; the lane's mutex guards it.
type limiter struct {
	lim         limits
	minute      queue // every admission of the sliding window (also feeds maxInWindow)
	qStart      int64 // start of the current quantum (Unix ns)
	qReqs       int   // admitted in the current quantum
	qTokens     int
	day         queue // admissions of the last day, kept only when rpd > 0
	last        int64 // latest admission time, to keep the queues sorted under a non-monotonic clock
	maxInWindow int
}

// verdict is the limiter's answer for one request, with the rate-limit state to report.
type verdict struct {
	ok     bool
	reason string        // when !ok: one of the reason* constants
	wait   time.Duration // when !ok and admissible later: how long until this request would be admitted

	reqLimit, reqRemaining int
	reqReset               time.Duration
	tokLimit, tokRemaining int
	tokReset               time.Duration
	requested              int // the request's token cost
	limit                  int // when !ok: the violated limit (RPM, TPM or RPD)
	used                   int // when !ok: requests (tokens for TPM) counted in the violated window
}

// admit decides whether a request costing cost tokens is admitted at now, and records it if so.
// A rejected request leaves no trace in the windows. When rejected for requests, tokens or requests
// per day, wait is the exact time until the request would be admitted if nothing else were: the time
// until enough of the oldest admissions have left the violated windows.
func (l *limiter) admit(now time.Time, cost int) verdict { return l.decide(now, cost, true) }

// decide is admit; with record false it only reports (eviction of old entries aside, nothing changes).
func (l *limiter) decide(now time.Time, cost int, record bool) verdict {
	t := now.UnixNano()
	if t < l.last {
		t = l.last
	}
	span := l.lim.span()
	rpm, tpm := share(l.lim.rpm, span), share(l.lim.tpm, span)
	l.minute.evict(t - int64(span))
	if l.lim.rpd > 0 {
		l.day.evict(t - int64(DayWindow))
	}
	var qRPM, qTPM int
	var qLeft time.Duration // until the current quantum ends
	if q := int64(l.lim.quantum); q > 0 {
		if start := t - t%q; start != l.qStart {
			l.qStart, l.qReqs, l.qTokens = start, 0, 0
		}
		qRPM, qTPM = share(l.lim.rpm, l.lim.quantum), share(l.lim.tpm, l.lim.quantum)
		qLeft = time.Duration(l.qStart + q - t)
	}
	v := verdict{reqLimit: rpm, tokLimit: tpm, requested: cost}
	n := l.minute.len()
	leave := func(s slot, w time.Duration) time.Duration { return time.Duration(s.at + int64(w) - t) }

	if (tpm > 0 && cost > tpm) || (qTPM > 0 && cost > qTPM) {
		v.reason, v.limit, v.used = reasonTooLarge, tpm, l.minute.sum
	} else {
		if l.lim.rpd > 0 && l.day.len()+1 > l.lim.rpd {
			d := l.day.len()
			if w := leave(l.day.nth(d-l.lim.rpd), DayWindow); w > v.wait || v.reason == "" {
				v.reason, v.limit, v.wait, v.used = reasonDay, l.lim.rpd, w, d
			}
		}
		if rpm > 0 && n+1 > rpm {
			w := leave(l.minute.nth(n-rpm), span)
			v.reqReset = w
			if w > v.wait || v.reason == "" {
				v.reason, v.limit, v.wait, v.used = reasonRequests, rpm, w, n
			}
		}
		if tpm > 0 && l.minute.sum+cost > tpm {
			need, freed := l.minute.sum+cost-tpm, 0
			var w time.Duration
			for i := 0; i < n; i++ {
				s := l.minute.nth(i)
				if freed += s.tokens; freed >= need {
					w = leave(s, span)
					break
				}
			}
			v.tokReset = w
			if w > v.wait || v.reason == "" {
				v.reason, v.limit, v.wait, v.used = reasonTokens, tpm, w, l.minute.sum
			}
		}
		// The quantum: a rejection here leaves the window's remaining counts positive.
		if qRPM > 0 && l.qReqs+1 > qRPM && (v.reason == "" || qLeft > v.wait) {
			v.reason, v.limit, v.wait, v.used, v.reqReset = reasonRequests, qRPM, qLeft, l.qReqs, qLeft
		}
		if qTPM > 0 && l.qTokens+cost > qTPM && (v.reason == "" || qLeft > v.wait) {
			v.reason, v.limit, v.wait, v.used, v.tokReset = reasonTokens, qTPM, qLeft, l.qTokens, qLeft
		}
	}

	if v.reason == "" && record {
		v.ok = true
		l.last = t
		l.minute.push(t, cost)
		l.qReqs++
		l.qTokens += cost
		if l.lim.rpd > 0 {
			l.day.push(t, 0)
		}
		n++
		l.maxInWindow = max(l.maxInWindow, n)
	}
	// Remaining counts and, where the request was not rejected for that limit, the time until the
	// oldest admission leaves the window (when capacity next grows).
	// With a quantum, capacity is back when the quantum ends, unless the window is full.
	var next time.Duration
	switch {
	case qLeft > 0 && (rpm == 0 || n < rpm) && (tpm == 0 || l.minute.sum < tpm):
		next = qLeft
	case n > 0:
		next = leave(l.minute.oldest(), span)
	}
	v.reqRemaining = max(0, rpm-n)
	v.tokRemaining = max(0, tpm-l.minute.sum)
	if v.reqReset == 0 {
		v.reqReset = next
	}
	if v.tokReset == 0 {
		v.tokReset = next
	}
	if !l.lim.windowHeaders && span != MinuteWindow {
		// Per-minute figures whatever the window: the window's counts scaled to a minute.
		v.reqLimit, v.tokLimit = l.lim.rpm, l.lim.tpm
		v.reqRemaining = perMinute(v.reqRemaining, span)
		v.tokRemaining = perMinute(v.tokRemaining, span)
	}
	return v
}

// peek is the verdict's header state at now without admitting anything: what a response that never
// reached the limiter (a random 429) reports.
func (l *limiter) peek(now time.Time) verdict {
	v := l.decide(now, 0, false)
	v.ok, v.reason, v.wait = true, "", 0
	return v
}

// perMinute scales a count of a window of length d to a minute.
func perMinute(n int, d time.Duration) int {
	return int(int64(n) * int64(time.Minute) / int64(d))
}
