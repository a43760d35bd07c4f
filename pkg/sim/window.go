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
type limits struct {
	rpm, tpm, rpd int
	hideHeaders   bool
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
	minute      queue // every admission of the last minute (also feeds maxInWindow)
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
func (l *limiter) admit(now time.Time, cost int) verdict {
	t := now.UnixNano()
	if t < l.last {
		t = l.last
	}
	l.minute.evict(t - int64(MinuteWindow))
	if l.lim.rpd > 0 {
		l.day.evict(t - int64(DayWindow))
	}
	v := verdict{reqLimit: l.lim.rpm, tokLimit: l.lim.tpm, requested: cost}
	n := l.minute.len()
	leave := func(s slot, w time.Duration) time.Duration { return time.Duration(s.at + int64(w) - t) }

	if l.lim.tpm > 0 && cost > l.lim.tpm {
		v.reason, v.limit, v.used = reasonTooLarge, l.lim.tpm, l.minute.sum
	} else {
		if l.lim.rpd > 0 && l.day.len()+1 > l.lim.rpd {
			d := l.day.len()
			if w := leave(l.day.nth(d-l.lim.rpd), DayWindow); w > v.wait || v.reason == "" {
				v.reason, v.limit, v.wait, v.used = reasonDay, l.lim.rpd, w, d
			}
		}
		if l.lim.rpm > 0 && n+1 > l.lim.rpm {
			w := leave(l.minute.nth(n-l.lim.rpm), MinuteWindow)
			v.reqReset = w
			if w > v.wait || v.reason == "" {
				v.reason, v.limit, v.wait, v.used = reasonRequests, l.lim.rpm, w, n
			}
		}
		if l.lim.tpm > 0 && l.minute.sum+cost > l.lim.tpm {
			need, freed := l.minute.sum+cost-l.lim.tpm, 0
			var w time.Duration
			for i := 0; i < n; i++ {
				s := l.minute.nth(i)
				if freed += s.tokens; freed >= need {
					w = leave(s, MinuteWindow)
					break
				}
			}
			v.tokReset = w
			if w > v.wait || v.reason == "" {
				v.reason, v.limit, v.wait, v.used = reasonTokens, l.lim.tpm, w, l.minute.sum
			}
		}
	}

	if v.reason == "" {
		v.ok = true
		l.last = t
		l.minute.push(t, cost)
		if l.lim.rpd > 0 {
			l.day.push(t, 0)
		}
		n++
		l.maxInWindow = max(l.maxInWindow, n)
	}
	// Remaining counts and, where the request was not rejected for that limit, the time until the
	// oldest admission leaves the window (when capacity next grows).
	var next time.Duration
	if n > 0 {
		next = leave(l.minute.oldest(), MinuteWindow)
	}
	v.reqRemaining = max(0, l.lim.rpm-n)
	v.tokRemaining = max(0, l.lim.tpm-l.minute.sum)
	if v.reqReset == 0 {
		v.reqReset = next
	}
	if v.tokReset == 0 {
		v.tokReset = next
	}
	return v
}
