// Package batch is the pipeline of `llmbatch run`. A request's path, top to bottom:
//
//	Prepare      check pins, keys and the whole input (prepare.go)           → *UsageError, nothing sent
//	Analyze      count tokens, categorise, stream in input order (analyze.go)
//	ResultSource known already? resume scan, then the response cache (output.go)  → skip / cached line
//	Planner      choose the prompt's targets, preferred first (job.go); Via batch: a job (batchroute.go)
//	admit        rate-limit ticket → budget → slots → breaker, all or none (admit.go; Limiter seam)
//	Dispatcher   send: one HTTP request per prompt (seams.go)
//	finish       settle and release all four; retry.Next picks again/other lane/fail (job.go)
//	writer       one goroutine appends each result line; then compaction (engine.go, output.go)
//
// # Stopping
//
// A run stops in exactly two ways, both owned by the caller: closing Options.Stop (graceful: no new
// request starts, those in flight get Options.Grace to finish and be written, the rest of the input
// is counted as remaining) and cancelling ctx (immediate: requests in flight are abandoned, to be
// resumed). Before anything is sent (Prepare) either one ends the run at once with ErrInterrupted.
// Inside, the engine keeps two contexts: halted (no new request; its cause says why: Stop, a write
// error, or the input failing) and wire (requests already sent). The --max-cost budget halts
// nothing: a prompt whose worst case can no longer fit is left unsent (Report.BudgetLeft) and the
// others go on.
//
// # Time
//
// Every component reads time from Options.Now: the engine, the limiters (ratelimit, whose decisions
// also exist at explicit times: ReserveAt, DelayAt, ObserveAt), breakers and health. Waits use
// timers and select on the context, never time.Sleep; tests that wait run in testing/synctest, whose
// virtual clock drives both Now (time.Now) and the timers.
//
// # Memory
//
// Each prompt is one job goroutine; at most four times the concurrency (and at least 256) jobs exist
// at once, so memory stays bounded whatever the input size.
package batch
