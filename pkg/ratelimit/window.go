package ratelimit

import (
	"slices"
	"time"
)

// entry is one slot of the sliding-window log: the requests and tokens admitted at (or merged into)
// time at.
type entry struct {
	at      time.Time // the latest admission merged into the entry: when it leaves the window
	first   time.Time // the earliest: merging stops a quantum after it, so entries do not grow forever
	reqs    int
	tokens  int
	limited int  // requests answered 429
	phantom bool // usage the provider reported that we did not send (another client, an earlier run)
	gone    bool // slid out of the window: later corrections must not touch the sums
}

// window is the sliding-window log of admissions over span. It is what makes the hard guarantee:
// a request is admitted at t only if the requests and tokens logged in (t-span, t] plus its own stay
// within the per-minute limits. Admissions closer together than quantum share one entry whose time
// is the latest of them, so they leave the window together, slightly late, never early: memory stays
// bounded by span/quantum entries whatever the rate.
//
// Entries are sorted by time. Reservations are appended in order (the Limiter never admits before its
// last reservation); phantom entries, which lie in the past, are inserted in place.
type window struct {
	span    time.Duration
	quantum time.Duration
	entries []*entry
	reqs    int // sums over entries
	tokens  int
}

// prune drops the entries that have left the window at now.
func (w *window) prune(now time.Time) {
	i := 0
	for i < len(w.entries) && !w.entries[i].at.Add(w.span).After(now) {
		e := w.entries[i]
		w.reqs -= e.reqs
		w.tokens -= e.tokens
		e.gone = true
		w.entries[i] = nil // let the collector have it
		i++
	}
	if i > 0 {
		w.entries = w.entries[i:]
	}
}

// lastAt is the time of the latest entry, zero when the window is empty.
func (w *window) lastAt() time.Time {
	if len(w.entries) == 0 {
		return time.Time{}
	}
	return w.entries[len(w.entries)-1].at
}

// readyAt returns the earliest time at or after t when a request of n tokens fits: at most rpm
// requests and tpm tokens (0 = no limit) in the window ending then. Every entry lies at or before t,
// so waiting only removes entries, oldest first. The caller has checked n <= tpm.
func (w *window) readyAt(t time.Time, n, rpm, tpm int) time.Time {
	reqs, tokens := w.reqs, w.tokens
	for _, e := range w.entries {
		if (rpm <= 0 || reqs+1 <= rpm) && (tpm <= 0 || tokens+n <= tpm) {
			break
		}
		reqs -= e.reqs
		tokens -= e.tokens
		if out := e.at.Add(w.span); out.After(t) {
			t = out
		}
	}
	return t
}

// add logs a request of n tokens at t (not before lastAt) and returns its entry.
func (w *window) add(t time.Time, n int) *entry {
	w.reqs++
	w.tokens += n
	if k := len(w.entries); k > 0 {
		if last := w.entries[k-1]; !last.phantom && t.Sub(last.first) < w.quantum {
			last.at = t
			last.reqs++
			last.tokens += n
			return last
		}
	}
	e := &entry{at: t, first: t, reqs: 1, tokens: n}
	w.entries = append(w.entries, e)
	return e
}

// remove takes a request of n tokens back out of its entry.
func (w *window) remove(e *entry, n int) {
	e.reqs--
	e.tokens -= n
	if !e.gone {
		w.reqs--
		w.tokens -= n
	}
	// Drop emptied entries at the tail so lastAt (the earliest time a new request may be admitted)
	// moves back to the latest live reservation.
	for k := len(w.entries); k > 0 && w.entries[k-1].reqs == 0 && w.entries[k-1].tokens == 0; k-- {
		w.entries[k-1].gone = true
		w.entries[k-1] = nil
		w.entries = w.entries[:k-1]
	}
}

// move takes a request of n tokens out of its entry e and logs it again at t (after e's time), in
// time order, returning its new entry.
func (w *window) move(e *entry, n int, t time.Time) *entry {
	e.reqs--
	e.tokens -= n
	if !e.gone {
		w.reqs--
		w.tokens -= n
	}
	ne := &entry{at: t, first: t, reqs: 1, tokens: n}
	i, _ := slices.BinarySearchFunc(w.entries, t, func(e *entry, t time.Time) int {
		if e.at.After(t) {
			return 1
		}
		return -1
	})
	w.entries = slices.Insert(w.entries, i, ne)
	w.reqs++
	w.tokens += n
	return ne
}

// addTokens corrects an entry by extra tokens (an under-estimate settled later).
func (w *window) addTokens(e *entry, extra int) {
	e.tokens += extra
	if !e.gone {
		w.tokens += extra
	}
}

// acceptedIn returns the requests logged in (from, to) that were not answered 429: those the
// provider accepted or has yet to answer.
func (w *window) acceptedIn(from, to time.Time) int {
	n := 0
	for _, e := range w.entries {
		if !e.at.Before(to) {
			break
		}
		if e.at.After(from) {
			n += e.reqs - e.limited
		}
	}
	return n
}

// insertPhantom logs reqs requests and tokens tokens of usage we did not send, at t.
func (w *window) insertPhantom(t time.Time, reqs, tokens int) {
	e := &entry{at: t, first: t, reqs: reqs, tokens: tokens, phantom: true}
	i, _ := slices.BinarySearchFunc(w.entries, t, func(e *entry, t time.Time) int {
		if e.at.After(t) {
			return 1
		}
		return -1 // equal times sort before the phantom: keep insertion after them
	})
	w.entries = slices.Insert(w.entries, i, e)
	w.reqs += reqs
	w.tokens += tokens
}

// sumUntil returns the requests and tokens logged at or before t.
func (w *window) sumUntil(t time.Time) (reqs, tokens int) {
	reqs, tokens = w.reqs, w.tokens
	for i := len(w.entries) - 1; i >= 0 && w.entries[i].at.After(t); i-- {
		reqs -= w.entries[i].reqs
		tokens -= w.entries[i].tokens
	}
	return reqs, tokens
}

// sumBetween returns the requests and tokens logged in (from, to].
func (w *window) sumBetween(from, to time.Time) (reqs, tokens int) {
	for _, e := range w.entries {
		if e.at.After(to) {
			break
		}
		if e.at.After(from) {
			reqs += e.reqs
			tokens += e.tokens
		}
	}
	return reqs, tokens
}
