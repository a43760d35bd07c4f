package batch

import (
	"context"
	"errors"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
	"github.com/llmbatch/llmbatch/pkg/routing"
)

// refusal says why a lane did not admit a prompt; admitted when it did.
type refusal int

const (
	admitted  refusal = iota
	rStopped          // the run is stopping, or the prompt's worst case does not fit the budget: leave it for resume
	rQuota            // the lane's daily quota is spent (the lane is marked exhausted)
	rTooLarge         // the request exceeds the lane's token limit: another lane must take it
	rMoved            // choose again at once: a lane recovered, this breaker opened, or the provider was disabled
	rBusy             // the lane's half-open breaker has its one trial in flight: ask again shortly
)

// admission is what a prompt holds on a lane while its one request is out: the rate-limit ticket,
// the budget reservation, the in-flight slots and the breaker permit. It exists only whole: admit
// takes all four or none, and finish gives all four back exactly once.
type admission struct {
	e      *engine
	target *target
	ticket Ticket
	cost   float64 // USD reserved in the budget
	maxOut int     // output tokens the reservation covers
	tokens int     // what the limiter admitted
	permit func(error)
}

// settlement is how an admitted request ended, for finish.
type settlement struct {
	// err is the attempt's error (nil on success); the breaker reads its class.
	err         error
	rateLimited bool                // a 429: the limiter pauses the lane and adapts
	limits      provider.RateLimits // headers of the answer, if any
	tokens      int                 // tokens billed (input + output); 0 = unknown or none
	cost        float64             // USD billed; providers don't bill the errors they return
}

// admit takes, in this order, the lane's rate-limit ticket for tokens, cost USD of the budget, the
// global and the provider's in-flight slots, and the lane's breaker permit. The order matters: the
// slots come after the (possibly long) rate-limit wait so waiting prompts don't hold slots other
// lanes could use, and the breaker and the provider's state are checked last, right before sending,
// so no request goes out to a lane that failed meanwhile. When one step refuses, admit gives back
// what the earlier steps took and says why. ctx ends the rate-limit wait early (a recovered lane);
// the run's halt ends every wait.
func (e *engine) admit(ctx context.Context, l *target, tokens int, cost float64) (*admission, refusal) {
	return e.admitHeld(ctx, l, tokens, price{base: cost}, nil, nil)
}

// admitHeld is admit with the slot the job reserved on l when it chose the lane (held; heldErr the
// reservation's failure): it waits for that slot instead of reserving again. The budget step
// reserves for as many output tokens as fit, from p.lo to p.hi (see budget.reserveUpTo), and the
// admission's maxOut says how many.
func (e *engine) admitHeld(ctx context.Context, l *target, tokens int, p price, held heldTicket, heldErr error) (*admission, refusal) {
	var ticket Ticket
	var err error
	switch {
	case heldErr != nil:
		err = heldErr
	case held != nil:
		if err = held.Wait(ctx); err == nil {
			ticket = held
		}
	default:
		ticket, err = l.limits.Wait(ctx, tokens)
	}
	switch {
	case errors.Is(err, ratelimit.ErrDailyExhausted):
		if !l.exhausted.Swap(true) {
			e.log.Warn("daily quota spent: lane takes no more work", "lane", l.name())
		}
		return nil, rQuota
	case errors.Is(err, ratelimit.ErrTooLarge):
		return nil, rTooLarge
	case err != nil && e.halted.Err() == nil:
		return nil, rMoved // ctx ended but the run goes on: a lane recovered
	case err != nil:
		return nil, rStopped
	}
	maxOut, cost, err := e.budget.reserveUpTo(e.halted, p)
	if err != nil {
		ticket.Cancel()
		if errors.Is(err, errBudget) {
			e.leaveForBudget(l, p.at(p.lo))
		}
		return nil, rStopped
	}
	if !e.acquire(l) {
		ticket.Cancel()
		e.budget.settle(cost, 0)
		return nil, rStopped
	}
	permit, ok := l.breaker.Allow()
	if !ok || l.prov.disabledReason() != "" {
		if ok {
			permit(context.Canceled) // neutral for the breaker
		}
		e.release(l)
		ticket.Cancel()
		e.budget.settle(cost, 0)
		if ok || l.breaker.State() == routing.StateOpen {
			return nil, rMoved // pick skips the lane now
		}
		return nil, rBusy
	}
	l.admitted.Add(1)
	l.admittedTokens.Add(int64(tokens))
	return &admission{e: e, target: l, ticket: ticket, cost: cost, maxOut: maxOut, tokens: tokens, permit: permit}, admitted
}

// finish settles the admission with how its request ended and releases everything it holds. A
// second call does nothing.
func (a *admission) finish(s settlement) {
	if a.e == nil {
		return
	}
	e, l := a.e, a.target
	a.e = nil
	e.release(l)
	a.permit(s.err)
	l.shareBreaker()
	switch {
	case s.err == nil:
		l.limits.Observe(s.limits)
		a.ticket.Settle(s.tokens)
	case s.rateLimited:
		a.ticket.RateLimited(s.limits) // pauses the lane until Retry-After and adapts hidden limits
	default:
		l.limits.Observe(s.limits)
		a.ticket.Settle(0) // providers count rejected requests against the window too
	}
	e.budget.settle(a.cost, s.cost)
}

// acquire takes the global and the provider's in-flight slots; false when the run halts meanwhile.
func (e *engine) acquire(l *target) bool {
	select {
	case e.slots <- struct{}{}:
	case <-e.halted.Done():
		return false
	}
	if l.prov.slots != nil {
		select {
		case l.prov.slots <- struct{}{}:
		case <-e.halted.Done():
			<-e.slots
			return false
		}
	}
	l.inFlight.Add(1)
	return true
}

// release gives back the slots acquire took.
func (e *engine) release(l *target) {
	l.inFlight.Add(-1)
	if l.prov.slots != nil {
		<-l.prov.slots
	}
	<-e.slots
}
