package sim

import (
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestLimiterRPMExactBoundary(t *testing.T) {
	l := limiter{lim: limits{rpm: 3}}
	for i := range 3 {
		if v := l.admit(t0.Add(time.Duration(i)*time.Second), 1); !v.ok || v.reqRemaining != 2-i {
			t.Fatalf("admission %d: %+v", i, v)
		}
	}
	v := l.admit(t0.Add(10*time.Second), 1)
	if v.ok || v.reason != reasonRequests || v.wait != 50*time.Second || v.reqReset != 50*time.Second {
		t.Fatalf("4th: %+v", v)
	}
	if v := l.admit(t0.Add(time.Minute-time.Nanosecond), 1); v.ok || v.wait != time.Nanosecond {
		t.Fatalf("1ns early: %+v", v)
	}
	v = l.admit(t0.Add(time.Minute), 1)
	if !v.ok || v.reqRemaining != 0 || v.reqReset != time.Second {
		t.Fatalf("at the boundary: %+v", v)
	}
	if l.maxInWindow != 3 {
		t.Fatalf("maxInWindow %d", l.maxInWindow)
	}
}

func TestLimiterTPMWaitsForEnoughTokens(t *testing.T) {
	l := limiter{lim: limits{tpm: 100}}
	for i, c := range []int{30, 30, 30} {
		if v := l.admit(t0.Add(time.Duration(i)*time.Second), c); !v.ok {
			t.Fatalf("admission %d: %+v", i, v)
		}
	}
	// 90 used; 50 needs 40 freed: the first two (60) must leave, at t0+61s.
	v := l.admit(t0.Add(5*time.Second), 50)
	if v.ok || v.reason != reasonTokens || v.wait != 56*time.Second || v.tokReset != 56*time.Second || v.tokRemaining != 10 {
		t.Fatalf("tokens: %+v", v)
	}
	if v := l.admit(t0.Add(61*time.Second-1), 50); v.ok {
		t.Fatalf("admitted early: %+v", v)
	}
	if v := l.admit(t0.Add(61*time.Second), 50); !v.ok || v.tokRemaining != 20 {
		t.Fatalf("at the boundary: %+v", v)
	}
	if v := l.admit(t0.Add(62*time.Second), 101); v.ok || v.reason != reasonTooLarge || v.wait != 0 {
		t.Fatalf("too large: %+v", v)
	}
}

func TestLimiterRPDAndLongestWait(t *testing.T) {
	l := limiter{lim: limits{rpm: 2, rpd: 3}}
	for i := range 3 {
		if v := l.admit(t0.Add(time.Duration(i)*time.Minute), 1); !v.ok {
			t.Fatalf("admission %d: %+v", i, v)
		}
	}
	v := l.admit(t0.Add(3*time.Minute), 1)
	if v.ok || v.reason != reasonDay || v.wait != 24*time.Hour-3*time.Minute {
		t.Fatalf("day: %+v (want wait %v)", v, 24*time.Hour-3*time.Minute)
	}
	if v := l.admit(t0.Add(24*time.Hour), 1); !v.ok {
		t.Fatalf("next day: %+v", v)
	}
	// Both RPM and RPD violated: the longer wait wins.
	l = limiter{lim: limits{rpm: 1, rpd: 1}}
	l.admit(t0, 1)
	if v := l.admit(t0.Add(time.Second), 1); v.reason != reasonDay || v.wait != DayWindow-time.Second || v.reqReset != 59*time.Second {
		t.Fatalf("both: %+v", v)
	}
}

func TestLimiterNonMonotonicClockKeepsOrder(t *testing.T) {
	l := limiter{lim: limits{rpm: 2}}
	l.admit(t0.Add(time.Second), 1)
	l.admit(t0, 1) // clock stepped back: recorded at t0+1s
	if v := l.admit(t0.Add(time.Minute), 1); v.ok {
		t.Fatal("an admission recorded at t0+1s must still count at t0+60s")
	}
}

func TestLimiterShortWindowAdmitsItsShare(t *testing.T) {
	// 3,600 RPM over a 10 s window: 600 at once, the 601st when the first leaves; headers state the
	// per-minute figures (remaining scaled to a minute) unless windowHeaders asks for the window's.
	for _, windowHeaders := range []bool{false, true} {
		l := limiter{lim: limits{rpm: 3600, window: 10 * time.Second, windowHeaders: windowHeaders}}
		var v verdict
		for i := range 600 {
			if v = l.admit(t0, 1); !v.ok {
				t.Fatalf("admission %d refused: %+v", i, v)
			}
		}
		if v.reqReset != 10*time.Second {
			t.Fatalf("reset %v, want the window", v.reqReset)
		}
		v = l.admit(t0.Add(9*time.Second), 1)
		if v.ok || v.reason != reasonRequests || v.wait != time.Second {
			t.Fatalf("601st within the window: %+v", v)
		}
		wantLimit, wantRemaining := 3600, 0
		if windowHeaders {
			wantLimit = 600
		}
		if v.reqLimit != wantLimit || v.reqRemaining != wantRemaining {
			t.Fatalf("windowHeaders %v: limit %d remaining %d, want %d %d", windowHeaders, v.reqLimit, v.reqRemaining, wantLimit, wantRemaining)
		}
		if v = l.admit(t0.Add(10*time.Second), 1); !v.ok {
			t.Fatalf("601st after the window: %+v", v)
		}
		if l.maxInWindow != 600 {
			t.Fatalf("maxInWindow %d, want 600", l.maxInWindow)
		}
	}
}

func TestLimiterQuantumRejectsWithBudgetLeft(t *testing.T) {
	// 600 RPM over 60 s, quantized per second: 10 a second, and a rejection leaves remaining positive.
	l := limiter{lim: limits{rpm: 600, tpm: 60000, quantum: time.Second}}
	at := t0.Add(300 * time.Millisecond)
	for i := range 10 {
		if v := l.admit(at, 10); !v.ok {
			t.Fatalf("admission %d: %+v", i, v)
		}
	}
	v := l.admit(at, 10)
	if v.ok || v.reason != reasonRequests || v.wait != 700*time.Millisecond || v.reqRemaining != 590 || v.reqLimit != 600 {
		t.Fatalf("11th in the quantum: %+v", v)
	}
	if v.reqReset != 700*time.Millisecond || v.tokRemaining != 60000-100 {
		t.Fatalf("reset %v, tokens remaining %d", v.reqReset, v.tokRemaining)
	}
	if v := l.admit(t0.Add(time.Second), 10); !v.ok || v.reqRemaining != 589 {
		t.Fatalf("next quantum: %+v", v)
	}
	// Tokens: 1,000 a quantum; a request larger than a quantum's share is never admissible.
	if v := l.admit(t0.Add(2*time.Second), 1001); v.ok || v.reason != reasonTooLarge {
		t.Fatalf("larger than a quantum's tokens: %+v", v)
	}
	if v := l.admit(t0.Add(2*time.Second), 999); !v.ok {
		t.Fatalf("999 tokens: %+v", v)
	}
	if v := l.admit(t0.Add(2*time.Second), 2); v.ok || v.reason != reasonTokens || v.tokRemaining <= 0 {
		t.Fatalf("1001st token of the quantum: %+v", v)
	}
}

func TestLimiterPeekAdmitsNothing(t *testing.T) {
	l := limiter{lim: limits{rpm: 2}}
	l.admit(t0, 1)
	for range 3 {
		if v := l.peek(t0.Add(time.Second)); !v.ok || v.reqRemaining != 1 {
			t.Fatalf("peek: %+v", v)
		}
	}
	if v := l.admit(t0.Add(time.Second), 1); !v.ok {
		t.Fatalf("after peeks: %+v", v)
	}
}
