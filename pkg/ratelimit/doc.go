// Package ratelimit paces the requests of one lane — one (provider, model) — so that they stay within
// the provider's limits: requests and tokens per minute (RPM, TPM) and per day (RPD, TPD).
//
// # Algorithm
//
// Providers enforce their per-minute limits strictly, typically over a sliding 60 s window, and count a
// request's tokens at admission as its prompt estimate plus max_tokens. A Limiter combines three
// mechanisms; a request is admitted at the earliest time all of them agree on:
//
//  1. Pacing. One x/time/rate token bucket per known per-minute limit, with rate limit/61 s and a burst
//     of about one second's worth. The bucket starts full, so a whole minute's budget as burst would
//     be accepted by the bucket and then rejected by a sliding-window provider. A request larger than
//     the burst waits for a full bucket and leaves the rest as debt, so it neither deadlocks nor
//     fails (rate.Limiter refuses such requests outright).
//  2. A sliding-window log of the requests and tokens admitted over the last 61 s. It is the hard
//     guarantee: no 61 s window (so no 60 s window) ever holds more than the limits, whatever the
//     bucket or the learning did. The extra second absorbs the jitter between our clock
//     and the provider's arrival times; it costs 1.6% of the ceiling. Admissions
//     within 60 ms of an entry's first share it, so the log is bounded whatever the rate.
//  3. Pauses. A 429 pauses only its lane, until Retry-After or, without one, for a backoff that starts
//     at 1 s and doubles per consecutive 429 (at most 30 s). Requests already waiting are rescheduled.
//
// Admissions are first come, first served: a request is never scheduled before one reserved earlier,
// so a large request is not starved by small ones. Wait reserves the slot and then sleeps until it
// (timer and select on the context); it fails at once when the context's deadline comes before the
// slot. Delay computes the same time without reserving.
//
// Daily limits are counters, reset 24 h after the lane's day started or when the provider's headers
// say so (Groq's per-day request headers). When the counters cannot admit a request, Wait fails at
// once with ErrDailyExhausted so the caller can fail over instead of waiting for hours. A request with
// more tokens than TPM or TPD fails with ErrTooLarge: the provider would never accept it.
//
// # Learning
//
// Configured limits are a starting point; the provider's headers are the truth. Observe adopts the
// limit a response advertises whenever it differs from what the lane uses (per-day request headers
// set RPD, other request headers RPM, token headers TPM), so an overstated configuration stops
// causing 429s after the first response. Remaining counts are reconciled with the log: when the
// provider reports more usage in its window than the log holds (another client on the key, an earlier
// run), the difference is logged as phantom usage that leaves the window when the provider's reset
// time says it does. When our log already accounts for the usage (the usual case) nothing changes, so
// a window that is legitimately full does not pause the lane for a whole minute.
//
// When a 429 arrives that its headers do not explain (no limit headers, or remaining counts that
// were not exhausted), the lane adapts its RPM by AIMD:
//   - Multiplicative decrease: to 0.95 times the requests the provider accepted in the minute before
//     the rejected one (everything the lane sent then that was not rejected: the best measurement of
//     the real limit), but never below half the current rate; before any limit is known the current
//     rate is what the lane sent in the last window. Only a 429 for a request admitted after the
//     previous decrease counts, so one burst of rejections decreases once.
//   - Increase, per request answered without a 429: back quickly to the accepted rate measured at the
//     last decrease (about 95% of the gap closed in a minute), then additively by 1/50 of a request
//     per minute per answer (+2% a minute), never above a configured or advertised limit, until the
//     next 429.
//
// Until any limit is known or a 429 arrives, a lane does not throttle at all: the caller's
// concurrency bound is the only limit, so unknown limits are discovered at full speed.
//
// # Use
//
// One attempt of one request:
//
//	t, err := lane.Wait(ctx, promptTokens+maxTokens) // ErrDailyExhausted, ErrTooLarge: use another lane
//	resp, err := p.Complete(ctx, req)
//	switch {
//	case err == nil:
//		t.Settle(resp.Usage.InputTokens + resp.Usage.OutputTokens)
//		lane.Observe(resp.Limits)
//	case apiErr.StatusCode == 429: // a rate limit, not insufficient_quota
//		t.RateLimited(apiErr.Limits) // counts, learns, pauses the lane
//	case never sent:
//		t.Cancel()
//	default: // sent and answered (or lost): the provider may have counted it
//		t.Settle(0)
//		lane.Observe(apiErr.Limits)
//	}
//
// Delay ranks lanes by how soon they could start a request; Snapshot gives limits, usage and the
// remaining daily budget for selection and display.
//
// All decisions read time from the injected clock and are made under one mutex per lane; a Limiter is
// safe for concurrent use.
package ratelimit
