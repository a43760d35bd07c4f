// Package ratelimit paces the requests of one lane — one (provider, model) — so that they stay within
// the provider's limits: requests and tokens per minute (RPM, TPM) and per day (RPD, TPD), as fast as
// the way the provider enforces them allows.
//
// # Enforcement: window and quantum
//
// RPM and TPM are per-minute figures, but providers count them over different windows. Limits.Window
// is the sliding window the figures are enforced over, admitting its share RPM·Window/60 at once;
// Limits.Quantum, when set, is a sub-window admitting only its own share (per-minute limits enforced
// per second, as OpenAI documents). A Limiter admits a request at the earliest time it fits:
//
//  1. The window's log: the requests and tokens admitted over the last Window plus a guard of 1/60
//     of it (1 s for a minute, for the jitter between our clock and the provider's) must stay within
//     the window's share. A finite job therefore sends a full window's share at once, then the next
//     share one window later: 1,000 requests at 600 RPM over 60 s take about 61 s.
//  2. The sub-window's log, with a quantum: no span of Quantum plus its guard holds more than the
//     quantum's share, so no burst goes above it.
//  3. Pauses after 429s (below).
//
// The logs are sliding-window logs rather than token buckets (x/time/rate): a bucket admits its
// burst on top of its refill in any span, twice a sub-window's share, and cannot give a full window's
// burst without overshooting the minute after it. Admissions within a thousandth of the window share
// a log entry, so a log is bounded whatever the rate. A request is logged from its slot, and again
// from the moment it leaves when that is later (Ticket.Sent): it waited for an in-flight slot, and
// the provider counts it from its arrival.
//
// With neither configured, a lane sends one second's share at a time (a sub-window of 1 s, its share
// rounded up: the window's log holds the limit) until the headers show the enforcement: a reset time
// of about a second means per-second enforcement; a longer one is the window, rounded up to 1, 2, 5,
// 10, 15, 20, 30 or 60 s, learned only when the lane's own older admissions cannot be what resets
// (the first answers tell it exactly). A 429 that arrives while the headers still show budget left
// means a sub-window is enforced: the lane paces one second's share at a time from then on. A
// configured window or quantum is never overridden.
//
// Admissions are first come, first served: a request is never scheduled before one reserved earlier,
// so a large request is not starved by small ones. Wait reserves the slot and then sleeps until it
// (timer and select on the context); it fails at once when the context's deadline comes before the
// slot. Reserve and Ticket.Wait do the same in two steps, so a caller can choose among lanes and
// take its place under its own lock. Delay computes the slot's time without reserving.
//
// Daily limits are counters, reset 24 h after the lane's day started or when the provider's headers
// say so (Groq's per-day request headers). When the counters cannot admit a request, Wait fails at
// once with ErrDailyExhausted so the caller can fail over instead of waiting for hours. A request with
// more tokens than the smallest enforced window admits, or than TPD, fails with ErrTooLarge: the
// provider would never accept it.
//
// # Learning
//
// Configured limits are a starting point; the provider's headers are the truth. Observe adopts the
// limit a response advertises whenever it differs from what the lane uses (per-day request headers
// set RPD, other request headers RPM, token headers TPM). Over a window other than a minute the
// header's figure may be per minute or the window's own: the reading closer to the configured limit
// wins, so a 10 s window whose headers say 600 keeps a configured 3,600 RPM; without configured
// limits the figure is per minute. Remaining counts are reconciled with the log: when the provider
// reports more usage in its window than the log holds (another client on the key, an earlier run),
// the difference is logged as phantom usage that leaves the window when the provider's reset time
// says it does, and a remaining count of zero pauses the lane until that reset.
//
// Unknown limits without a storm: while no limit is known and no answer has come, a lane lets only
// Probes requests out; the others wait for the first answer, whose headers set the pace. Without
// headers the lane then runs unthrottled, the caller's concurrency its only bound.
//
// # 429s
//
// A 429 its headers explain (no requests, or too few tokens, remaining) pauses the lane until its
// Retry-After, else its reset, else a backoff of 1 s doubling per consecutive 429 (at most 30 s).
// A 429 nothing explains (no limit headers, or budget left) is a busy provider, not a limit: it
// neither pauses the lane nor lowers its rate; the caller retries the request after its Retry-After.
// Only when rejections rise with the rate — such 429s are most of the lane's last 40 answers, or the
// lane, already adapting, has crept above the rate the provider accepted at its last decrease — does
// the RPM drop: to what the provider accepted over the minute before the rejected request (never
// below it; 97% of it after a creep), with a pause of at most the Retry-After. Each answer without
// a 429 then raises it: quickly back to the accepted rate, then by 1/50 of a request a minute, never
// above a configured or advertised limit.
//
// # Use
//
// One attempt of one request:
//
//	t, err := lane.Wait(ctx, promptTokens+maxTokens) // ErrDailyExhausted, ErrTooLarge: use another lane
//	// ... wait for an in-flight slot ...
//	t.Sent()
//	resp, err := p.Complete(ctx, req)
//	switch {
//	case err == nil:
//		lane.Observe(resp.Limits)
//		t.Settle(resp.Usage.InputTokens + resp.Usage.OutputTokens)
//	case apiErr.StatusCode == 429: // a rate limit, not insufficient_quota
//		t.RateLimited(apiErr.Limits) // counts, learns, pauses the lane when the headers explain it
//	case never sent:
//		t.Cancel()
//	default: // sent and answered (or lost): the provider may have counted it
//		lane.Observe(apiErr.Limits)
//		t.Settle(0)
//	}
//
// Delay ranks lanes by how soon they could start a request; Snapshot gives limits (with the
// enforcement in force and where each comes from), usage and the remaining daily budget.
//
// All decisions read time from the injected clock and are made under one mutex per lane; the
// explicit-time forms (ReserveAt, DelayAt, ObserveAt) step through t0..tn in tests. A Limiter is
// safe for concurrent use.
package ratelimit
