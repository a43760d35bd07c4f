// Package shared keeps rate limits, learned limits, pauses, breaker state and --max-cost budgets in a
// Redis that several llmbatch processes share, so that together they stay within one API key's
// limits and one job's budget (`run --shared URL`).
//
// # Lanes
//
// A lane is one (provider base URL, model, API key). Its identity is SHA-256 over the normalised base
// URL, the model and the SHA-256 of the key: processes configured alike share it, and the key never
// leaves the process. All of a lane's keys carry its id as a hash tag ({id}).
//
// # Admission
//
// Every decision is one call of one Lua script (lane.lua), atomic on the server and timed by the
// server's TIME, so the clocks of the machines never matter. The algorithm is pkg/ratelimit's:
//
//   - Pacing: a token bucket per known per-minute limit (GCRA: the time it is full again), at the
//     limit per 61 s with a burst of one second's worth; a request larger than the burst waits for a
//     full bucket and leaves debt.
//   - The hard guarantee: a window log of admissions (60 ms entries, counts per entry) that no 61 s
//     window may exceed; the extra second absorbs the jitter between admission and arrival.
//   - Pauses: a 429 pauses the lane for every process until Retry-After (else 1 s doubling to 30 s).
//   - Day counters (RPD, TPD) with a period that keeps its phase; ErrDailyExhausted, ErrTooLarge as
//     in pkg/ratelimit.
//   - First come, first served across processes: a slot is never before the latest one given.
//   - Learning: response headers set the limits for every process (source "headers") and usage the
//     window does not hold becomes phantom entries; 429s the headers do not explain lower the RPM
//     by AIMD (source "adaptive"), and answers raise it again.
//
// Wait reserves a slot (one round trip) and sleeps until it locally; Settle sends a settlement only
// when it carries news (an under-estimate, headers that teach something, the end of a 429 streak,
// an adaptive RPM to raise), so the usual request costs one round trip and none costs more than two.
// Observe costs nothing: the headers travel with the lane's next call. Delay and Snapshot read the
// state the last reply brought.
//
// While no per-minute limit is known and this process has had no answer on the lane, at most four
// requests are out: the engine takes tickets before its in-flight slots, and without a probe every
// queued prompt would be admitted before the first headers arrive.
//
// # Processes and faults
//
// Each process beats every 5 s (a key with a 15 s TTL, and its id in each lane's process set);
// `llmbatch limits` shows those seen in the last 15 s. When a call cannot reach Redis the Store says
// so once, and every lane runs on a local ratelimit.Limiter at this process's share of the last
// known limits (each divided by the processes seen on the lane; the daily ones applied to what was
// left of the day). A monitor pings Redis every 500 ms; when it answers, each lane adds what it
// admitted locally in the last minute and today to the shared state (with the limits it had learned,
// for a server that restarted empty) and rejoins. Slots reserved before the outage are kept;
// nothing is sent twice, since the engine's output is the record of what was answered.
//
// # Budgets
//
// A job's --max-cost cap (budget.lua) is kept in nano-dollars: reserve the worst case before a
// request, settle the actual cost after, in one atomic call each. Reservations of processes whose
// heartbeat expired are dropped. While Redis is unreachable a reservation waits for it (spending
// blind could exceed the cap) and settlements are kept and sent when it is back.
//
// The budget script reads heartbeat keys by name, so budgets need a single Redis node (not a
// cluster); lanes would work on a cluster.
package shared
