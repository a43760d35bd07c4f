package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/redact"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/retry"
	"github.com/llmbatch/llmbatch/pkg/routing"
	"github.com/llmbatch/llmbatch/pkg/selector"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

// job is one prompt on its way to a result line.
type job struct {
	e       *engine
	req     *request.Request
	item    selector.Item
	targets []*target // allowed lanes, preferred first
	planErr error     // why no lane can serve the prompt
	// charEstimate is the prompt's size as providers estimate it for rate limits.
	charEstimate int
	attempts     int // requests sent
	// throttled counts the 429s among attempts: a rate limit is the lane's state, not the prompt's
	// fault, so it has its own, larger allowance instead of using up max_attempts.
	throttled int
	// failures counts the retryable failures other than 429s on each lane: max_attempts applies per
	// lane, and a prompt that used them up on one lane moves on to its other lanes before failing.
	failures map[*target]int
	log      []results.Attempt
	// held is the slot reserved on the lane chooseLane picked under --prefer speed (heldErr why it
	// could not be); attempt waits for it.
	held    heldTicket
	heldErr error
	sentAt  time.Time // when the first request was sent: the result's started_at
}

// newJob asks the planner for the prompt's lanes. It runs on the producer goroutine (the planner is
// not safe for concurrent use).
func (e *engine) newJob(req *request.Request, item selector.Item) *job {
	j := &job{e: e, req: req, item: item, charEstimate: charEstimate(req)}
	a, err := e.planner.Add(&j.item)
	if err != nil {
		j.planErr = err
		return j
	}
	j.targets = append(j.targets, e.targets[a.Lane])
	for _, i := range e.planner.Group(a.Group) {
		if i != a.Lane {
			j.targets = append(j.targets, e.targets[i])
		}
	}
	return j
}

// outcome is how one attempt ended.
type outcome int

const (
	failed   outcome = iota // class says what went wrong
	finished                // the result line is ready
	stopped                 // the run is stopping (or the budget is spent): leave the prompt for resume
	refused                 // the lane could not take it right now (breaker trial in flight, daily quota spent)
	moved                   // choose again at once: a lane recovered, or this one's breaker opened or its provider was disabled while the prompt waited
)

// run sends the prompt until it succeeds, fails for good, or the run stops. A nil result means the
// prompt was not finished (stop or budget) and must be resumed later.
func (j *job) run() *results.Result {
	if j.planErr != nil {
		return j.fail(retry.Class{Type: retry.TypeBadRequest, Message: j.planErr.Error()}, nil)
	}
	var last retry.Class
	var lastLane *target
	for {
		if j.e.halted.Err() != nil {
			return nil
		}
		l, wait := j.chooseLane()
		if l == nil {
			if wait <= 0 {
				if lastLane == nil {
					last, lastLane = j.disabledCause()
				}
				last.Message = fmt.Sprintf("%s (no other capable lane left: %s)", last.Message, j.whyNoLane())
				return j.fail(last, lastLane)
			}
			// Every capable lane's breaker is open: wait for the first trial rather than fail at once,
			// unless they have been unusable too long.
			r, recheck := j.failIfDead()
			if r != nil {
				return r
			}
			if recheck > 0 && recheck < wait {
				wait = recheck
			}
			if retry.Wait(j.e.halted, wait) != nil {
				return nil
			}
			continue
		}
		res, class, how := j.attempt(l)
		switch how {
		case finished:
			return res
		case stopped:
			return nil
		case refused:
			if r, _ := j.failIfDead(); r != nil {
				return r
			}
			if retry.Wait(j.e.halted, refusedWait) != nil {
				return nil
			}
			continue
		case moved:
			continue
		}
		last, lastLane = class, l
		if r, _ := j.failIfDead(); r != nil {
			return r
		}
		step, delay := j.next(l, class)
		switch step {
		case retry.Fail:
			return j.fail(class, l)
		case retry.OtherLane:
			j.dropLane(l)
		case retry.LargerLane:
			j.dropLanesUpTo(l)
		case retry.Disable:
			if l.prov.disable(class) {
				j.e.log.Warn("provider disabled for the rest of the run", "provider", l.prov.name,
					"address", l.prov.addr, "error", string(class.Type), "message", redact.String(class.Message))
			}
		}
		if len(j.log) > 0 {
			j.log[len(j.log)-1].WaitMS = delay.Milliseconds()
		}
		if delay > 0 && retry.Wait(j.e.halted, delay) != nil {
			return nil
		}
	}
}

// failIfDead returns the error line of a prompt whose every lane is dead or gone (daily quota
// spent, provider disabled), at least one dead: not answering (see unanswered), its breaker not
// closed, since its failures began more than dead_after ago, or more than config.DeadOpens-1 of its
// longest open periods ago, with no success. While
// any lane may still serve the prompt it returns nil and, when that lane is failing, how long until
// dead_after could call it dead (0 = not failing), so a waiting prompt looks again then.
func (j *job) failIfDead() (*results.Result, time.Duration) {
	now := j.e.now()
	var dead *target
	var opens int
	var since time.Time
	for _, l := range j.targets {
		if l.exhausted.Load() || l.prov.disabledReason() != "" {
			continue
		}
		if l.breaker.State() == routing.StateClosed {
			return nil, 0
		}
		n, from := l.breaker.Streak()
		if !unanswered(l.lastFailure.Load()) {
			return nil, 0 // the provider answers, if badly: its prompts use up their attempts instead
		}
		// Dead after dead_after, or after as long as config.DeadOpens full open periods would take:
		// the breaker's periods start short and grow, and a prompt's only lane is probed sooner, so
		// the count of openings alone says little.
		limit := min(j.e.deadAfter, time.Duration(config.DeadOpens-1)*l.breaker.MaxOpen())
		if from.IsZero() {
			return nil, 0
		}
		if now.Sub(from) < limit {
			return nil, from.Add(limit).Sub(now)
		}
		if dead == nil {
			dead, opens, since = l, n, from
		}
	}
	if dead == nil {
		return nil, 0
	}
	c := *dead.lastFailure.Load() // non-nil: unanswered checked it
	c.Message = fmt.Sprintf("provider %s unusable since %s (breaker opened %d times in a row with no success; dead_after %s); last failure: %s",
		dead.prov.name, since.UTC().Format(time.RFC3339), opens, j.e.deadAfter, c.Message)
	if !dead.deadLogged.Swap(true) {
		j.e.log.Warn("lane dead: its prompts fail instead of waiting", "lane", dead.name(), "opens", opens,
			"failing_since", since, "last_failure", string(c.Type))
	}
	return j.fail(c, dead), 0
}

// unanswered reports whether a lane failure means the provider did not answer at all (5xx,
// overloaded, timeout, network) — what makes a lane dead. A provider that answers 200 with a body
// its API never sends (invalid_response) is up: each prompt retries it within its own attempts.
func unanswered(c *retry.Class) bool {
	if c == nil {
		return false
	}
	switch c.Type {
	case retry.TypeServerError, retry.TypeOverloaded, retry.TypeTimeout, retry.TypeNetwork:
		return true
	}
	return false
}

// refusedWait is how long a job waits before asking again when its lane's half-open breaker is busy
// with its one trial request.
const refusedWait = 250 * time.Millisecond

// next counts the failure of class on lane l and asks retry.Next what follows.
func (j *job) next(l *target, class retry.Class) (retry.Step, time.Duration) {
	s := retry.State{LaneFailures: j.failures[l], RateLimited: j.throttled, OtherLanes: len(j.targets) > 1,
		LaneHealthy: l.breaker.State() == routing.StateClosed}.Count(class)
	j.throttled = s.RateLimited
	if s.LaneFailures != j.failures[l] {
		if j.failures == nil {
			j.failures = map[*target]int{}
		}
		j.failures[l] = s.LaneFailures
	}
	s.Jitter = j.e.jitter()
	step, delay := retry.Next(s, class, l.prov.policy)
	if step == retry.OtherLane && class.Action == retry.ActionRetry {
		j.e.log.Debug("max attempts used on a lane; trying the prompt's next lane", "id", j.req.ID,
			"lane", l.sel.String(), "error", string(class.Type))
	}
	return step, delay
}

// chooseLane returns the lane for the next attempt, or nil and how long until a breaker admits a
// trial (0 = no lane will ever be usable again).
func (j *job) chooseLane() (*target, time.Duration) {
	if j.e.opts.Select.Prefer == selector.PreferSpeed {
		// Choose by delay and take the place under one lock, so concurrent choices see each other.
		j.e.speedMu.Lock()
		l := j.pick()
		if r, ok := l.limiterReserver(); ok {
			in, _ := j.item.Input(l.sel)
			j.held, j.heldErr = r.Reserve(j.admitTokens(l, in))
		}
		j.e.speedMu.Unlock()
		if l != nil {
			return l, 0
		}
	} else if l := j.pick(); l != nil {
		return l, 0
	}
	var soonest time.Duration
	var left []*target
	for _, l := range j.targets {
		if l.exhausted.Load() || l.prov.disabledReason() != "" {
			continue
		}
		left = append(left, l)
	}
	if len(left) == 1 {
		// The only lane able to serve the prompt: waiting out its open period stalls the prompt,
		// so it is probed sooner.
		left[0].breaker.ProbeSoon(left[0].breaker.MaxOpen() / soleProbe)
	}
	now := j.e.now()
	for _, l := range left {
		if d := l.breaker.OpenUntil().Sub(now); d > 0 && (soonest == 0 || d < soonest) {
			soonest = d
		}
	}
	return nil, soonest
}

// soleProbe divides the longest open period for the breaker of a prompt's only usable lane: it is
// probed at least four times as often as open_for says.
const soleProbe = 4

// pick chooses among the job's lanes by the run's policy, or returns nil when none is usable.
func (j *job) pick() *target {
	policy := routing.Cheapest
	if j.e.opts.Select.Prefer == selector.PreferSpeed {
		policy = routing.Soonest
	}
	cs := make([]routing.Candidate, len(j.targets))
	now := j.e.now()
	for i, l := range j.targets {
		load := 0.0
		if c := cap(l.prov.slots); c > 0 {
			load = float64(l.inFlight.Load()) / float64(c)
		}
		cs[i] = routing.Candidate{Usable: l.usable(), Healthy: l.health.Healthy(now), Load: load}
		if policy == routing.Soonest && cs[i].Usable {
			in, _ := j.item.Input(l.sel)
			cs[i].Delay = l.limits.Delay(j.admitTokens(l, in))
		}
	}
	if i := routing.Pick(cs, policy); i >= 0 {
		return j.targets[i]
	}
	return nil
}

// admitTokens is what a provider counts against the lane's TPM when it admits the request: its prompt
// estimate (providers estimate from characters, about 4 a token, so the larger of that and our
// count) plus max_tokens, or the model's max_output_tokens when the request sets none.
func (j *job) admitTokens(l *target, in int) int {
	out := j.item.MaxOutputTokens
	if out <= 0 {
		out = l.sel.MaxOutputTokens
	}
	if out <= 0 {
		out = j.item.OutputTokens
	}
	return max(in, j.charEstimate) + out
}

// expectedOutput is the output the budget reserves for: the most the request may produce.
func (j *job) expectedOutput(l *target) int {
	if j.item.MaxOutputTokens > 0 {
		return j.item.MaxOutputTokens
	}
	if l.sel.MaxOutputTokens > 0 {
		return l.sel.MaxOutputTokens
	}
	return j.item.OutputTokens
}

// budgetFloorTokens is the least max_tokens a request without one is sent with when the model's
// maximum does not fit what remains of --max-cost (an answer cut shorter than this is not worth
// paying for); below it the prompt waits, or is left unsent.
const budgetFloorTokens = 4096

// price is the budget's view of one attempt on lane l with in prompt tokens. The budget reserves for
// the larger input count: a provider may bill more than our tokenizer counts (an estimate for some
// models; runs of whitespace), and the cap must hold whatever it bills. The output is the request's
// max_tokens; a request without one may produce the model's maximum, and may be sent with a lower
// max_tokens, down to budgetFloorTokens, when the maximum does not fit.
func (j *job) price(l *target, in int) price {
	hi := j.expectedOutput(l)
	p := price{base: tokens.Cost(l.cfg, max(in, j.charEstimate), 0), unit: tokens.Cost(l.cfg, 0, 1), lo: hi, hi: hi}
	if j.req.MaxTokens <= 0 {
		p.lo = min(hi, budgetFloorTokens)
	}
	return p
}

// charEstimate is the providers' character-based prompt estimate: 4 characters a token plus the
// per-message overhead.
func charEstimate(req *request.Request) int {
	n := 3
	for _, m := range req.Messages {
		n += 4 + (len(m.Content.String())+3)/4
	}
	return n
}

// attempt makes one try on lane l: admission, the request, and its settlement.
func (j *job) attempt(l *target) (*results.Result, retry.Class, outcome) {
	in, _ := j.item.Input(l.sel)
	tokensIn := j.admitTokens(l, in)
	cost := j.price(l, in)
	ctx, stop := j.waitContext(l)
	waitFrom := j.e.now()
	held, heldErr := j.held, j.heldErr
	j.held, j.heldErr = nil, nil
	a, why := j.e.admitHeld(ctx, l, tokensIn, cost, held, heldErr)
	stop()
	if obs := j.e.opts.Observer; obs != nil && why == admitted {
		obs.Waited(l.prov.name, l.sel.Name, j.e.now().Sub(waitFrom))
	}
	switch why {
	case rQuota, rBusy:
		return nil, retry.Class{}, refused
	case rTooLarge:
		return nil, retry.Class{Type: retry.TypeContextLength, Action: retry.ActionFailover, Retryable: true,
			Message: fmt.Sprintf("%s: a request of %d tokens exceeds the lane's token limit", l.name(), tokensIn)}, failed
	case rMoved:
		return nil, retry.Class{}, moved
	case rStopped:
		return nil, retry.Class{}, stopped
	}
	j.attempts++
	if s, ok := a.ticket.(interface{ Sent() }); ok {
		s.Sent() // it may have waited for an in-flight slot: the provider counts it from now
	}
	started := j.e.now()
	if j.sentAt.IsZero() {
		j.sentAt = started
	}
	sendCtx, cancel := context.WithTimeout(j.e.wire, l.prov.timeout)
	preq := j.providerRequest(l)
	if a.maxOut < cost.hi {
		// No max_tokens of its own and the model's maximum does not fit the budget: the request asks
		// for no more than the budget reserved, so the cap holds whatever the model writes.
		preq.MaxTokens = a.maxOut
	}
	resp, err := l.prov.send.Send(sendCtx, preq)
	cancel()
	latency := j.e.now().Sub(started)
	if err == nil {
		cost := tokens.Cost(l.cfg, resp.Usage.InputTokens, resp.Usage.OutputTokens)
		if obs := j.e.opts.Observer; obs != nil {
			obs.Attempt(AttemptEvent{Provider: l.prov.name, Model: l.sel.Name, Latency: latency,
				InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens, CostUSD: cost})
		}
		a.finish(settlement{limits: resp.Limits, tokens: resp.Usage.InputTokens + resp.Usage.OutputTokens, cost: cost})
		j.e.showBreaker(l, nil)
		j.recordSuccess(l)
		j.logAttempt(l, started, "")
		return j.ok(l, resp, cost, latency), retry.Class{}, finished
	}
	class := retry.Classify(err)
	if obs := j.e.opts.Observer; obs != nil {
		obs.Attempt(AttemptEvent{Provider: l.prov.name, Model: l.sel.Name, Class: string(class.Type), Latency: latency})
	}
	var apiErr *provider.APIError
	var limits provider.RateLimits
	if errors.As(err, &apiErr) {
		limits = apiErr.Limits
	}
	a.finish(settlement{err: err, rateLimited: class.Type == retry.TypeRateLimit, limits: limits})
	if class.Type == retry.TypeRateLimit && j.e.opts.Summary != nil {
		// Counted now, under this lane: the prompt may end on another lane, or not in this run.
		j.e.opts.Summary.AddRateLimited(l.prov.name, l.sel.Name, 1)
	}
	if class.LaneFailure() {
		l.health.Record(false, j.e.now())
		l.lastFailure.Store(&class)
	}
	j.e.showFailure(l, class)
	j.e.showBreaker(l, &class)
	if class.Type == retry.TypeCanceled {
		return nil, class, stopped
	}
	j.logAttempt(l, started, string(class.Type))
	j.e.log.Debug("attempt failed", "id", j.req.ID, "lane", l.name(), "error", string(class.Type),
		"status", class.StatusCode, "attempt", j.attempts)
	return nil, class, failed
}

// waitContext is the context of the rate-limit wait on lane l. On a fallback lane (not the job's
// first) it also ends when any lane recovers, so that the job gives up its place in this lane's
// queue and chooses again: prompts that fell back while the preferred lane was down return to it
// once it is back. Call stop when the wait is over.
func (j *job) waitContext(l *target) (ctx context.Context, stop func()) {
	if len(j.targets) == 0 || l == j.targets[0] {
		return j.e.halted, func() {}
	}
	ctx, cancel := context.WithCancel(j.e.halted)
	unhook := context.AfterFunc(j.e.recovered.next(), cancel)
	return ctx, func() {
		unhook()
		cancel()
	}
}

// recordSuccess records a success in the lane's health and, when that brings the lane back above its
// health threshold, tells the jobs waiting on fallback lanes.
func (j *job) recordSuccess(l *target) {
	threshold := l.health.Config().Threshold
	before := l.health.Score()
	l.health.Record(true, j.e.now())
	if before < threshold && l.health.Score() >= threshold {
		j.e.log.Info("lane recovered", "lane", l.name())
		j.e.recovered.signal()
	}
}

func (j *job) providerRequest(l *target) *provider.Request { return providerRequest(j.req, l) }

// providerRequest is r as lane l's API is sent it.
func providerRequest(r *request.Request, l *target) *provider.Request {
	model := l.sel.Name
	return &provider.Request{Model: model, Messages: r.Messages, MaxTokens: r.MaxTokens,
		Temperature: r.Temperature, TopP: r.TopP, Stop: r.Stop, ResponseFormat: r.ResponseFormat,
		Tools: r.Tools, Extra: r.Extra, Reasoning: l.reasoning}
}

func (j *job) logAttempt(l *target, at time.Time, errType string) {
	if !j.e.opts.Verbose {
		return
	}
	j.log = append(j.log, results.Attempt{At: at.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Provider: l.prov.name, Model: l.sel.Name, ErrorType: errType})
}

func (j *job) ok(l *target, resp *provider.Response, cost float64, latency time.Duration) *results.Result {
	u := resp.Usage
	return &results.Result{CustomID: j.req.ID, Status: results.StatusOK, Provider: l.prov.name, Model: l.sel.Name,
		Content: resp.Content, ToolCalls: resp.ToolCalls, FinishReason: resp.FinishReason, Usage: &u,
		CostUSD: cost, Attempts: j.attempts, AttemptLog: j.log, LatencyMS: latency.Milliseconds(),
		RequestHash: j.req.Hash, RequestID: resp.RequestID, Metadata: j.req.Metadata,
		StartedAt: results.Timestamp(j.sentAt), FinishedAt: results.Timestamp(j.e.now())}
}

func (j *job) fail(c retry.Class, l *target) *results.Result {
	r := &results.Result{CustomID: j.req.ID, Status: results.StatusError, Attempts: j.attempts, AttemptLog: j.log,
		RequestHash: j.req.Hash, Metadata: j.req.Metadata,
		Error:     &results.ErrorInfo{Type: string(c.Type), Message: c.Message, StatusCode: c.StatusCode},
		StartedAt: results.Timestamp(j.sentAt), FinishedAt: results.Timestamp(j.e.now())}
	if l != nil {
		r.Provider, r.Model = l.prov.name, l.sel.Name
	}
	return r
}

// dropLane removes l from the job's lanes (the model is missing or refused this prompt).
func (j *job) dropLane(l *target) {
	out := j.targets[:0]
	for _, x := range j.targets {
		if x != l {
			out = append(out, x)
		}
	}
	j.targets = out
}

// dropLanesUpTo removes every lane whose context window is no larger than l's.
func (j *job) dropLanesUpTo(l *target) {
	out := j.targets[:0]
	for _, x := range j.targets {
		if x.sel.ContextWindow > l.sel.ContextWindow || (x.sel.ContextWindow == 0 && l.sel.ContextWindow > 0) {
			out = append(out, x)
		}
	}
	j.targets = out
}

// disabledCause is the failure that disabled the provider of one of the job's lanes, for a job that
// never got to send; a bad_request "no usable lane" when none was disabled.
func (j *job) disabledCause() (retry.Class, *target) {
	for _, l := range j.targets {
		if c, off := l.prov.disabledClass(); off {
			return c, l
		}
	}
	return retry.Class{Type: retry.TypeBadRequest, Message: "no usable lane"}, nil
}

// whyNoLane says why none of the job's lanes can take it.
func (j *job) whyNoLane() string {
	if len(j.targets) == 0 {
		return "every capable lane refused it"
	}
	reasons := ""
	for _, l := range j.targets {
		why := "daily quota spent"
		if r := l.prov.disabledReason(); r != "" {
			why = "provider disabled: " + r
		}
		if reasons != "" {
			reasons += "; "
		}
		reasons += l.name() + ": " + why
	}
	return reasons
}
