package selector

// This file holds the explanation: the reasons behind a choice (--explain) and the errors for
// prompts no lane can serve.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/model"
)

// Explain returns the choice Add would make for the item now, with the reasons, without recording it.
// Choice.Lanes starts with the lane Add would assign, followed by the other alternatives, cheapest first.
// Choice.Excluded then lists every other configured lane with the reason it was ruled out.
func (p *Planner) Explain(it *Item) Choice {
	var ch Choice
	a := p.decide(it, &ch)
	if a.Lane >= 0 {
		ch.Lanes = append(ch.Lanes, p.lanes[a.Lane])
		for _, i := range p.groups[a.Group] {
			if i != a.Lane {
				ch.Lanes = append(ch.Lanes, p.lanes[i])
			}
		}
	}
	p.excludeRest(it, &ch, a)
	return ch
}

// excludeRest adds to ch.Excluded the lanes that decide neither chose nor ruled out (it stops at
// the first category with a capable lane): each with why it cannot serve the item, or, when it
// could, why the prompt does not use its category.
func (p *Planner) excludeRest(it *Item, ch *Choice, a Assignment) {
	listed := make(map[*Lane]bool, len(p.lanes))
	for _, l := range ch.Lanes {
		listed[l] = true
	}
	for _, e := range ch.Excluded {
		listed[e.Lane] = true
	}
	pm, pp := p.pins(it)
	start := max(it.Category, model.Tiny)
	for i, l := range p.lanes {
		if listed[l] {
			continue
		}
		in, _ := it.Input(l)
		if k := p.check(int32(i), it, in); k != 0 {
			ch.Excluded = append(ch.Excluded, Exclusion{Lane: l, Kind: k, Reason: p.reason(k, int32(i), it, in, pm, pp)})
			continue
		}
		var why string
		switch c := l.rank(); {
		case a.Lane < 0:
			why = fmt.Sprintf("category %s: not tried", c)
		case c < start:
			why = fmt.Sprintf("wrong category: %s, below the prompt's %s (a prompt only goes up)", c, start)
		case c > a.Category:
			why = fmt.Sprintf("wrong category: %s, used only when no %s lane can serve the prompt", c, a.Category)
		default:
			why = "capable, but not in the prompt's lanes (another group of the plan)"
		}
		ch.Excluded = append(ch.Excluded, Exclusion{Lane: l, Kind: ExclCategory, Reason: why})
	}
}

// reason renders an exclusion for lane i.
func (p *Planner) reason(k ExclusionKind, i int32, it *Item, in int, pm, pp string) string {
	l := p.lanes[i]
	switch k {
	case ExclPinned:
		if pp != "" && l.Provider != pp {
			return "pinned to provider " + pp
		}
		return "pinned to model " + pm
	case ExclUnavailable:
		if l.Unavailable != "" {
			return l.Unavailable
		}
		return "unavailable"
	case ExclMaxOutput:
		return fmt.Sprintf("max output too small (needs %d, has %d)", it.reserve(), l.MaxOutputTokens)
	case ExclContext:
		return fmt.Sprintf("context too small (needs %d, has %d)", in+it.reserve(), l.ContextWindow)
	case ExclDaily:
		ld := &p.load[i]
		if l.DailyRequestsLeft >= 0 && ld.reqs+1 > l.DailyRequestsLeft {
			return fmt.Sprintf("daily limit used (%d requests left today, %d planned)", l.DailyRequestsLeft, ld.reqs)
		}
		return fmt.Sprintf("daily limit used (%d tokens left today, %d planned, this prompt needs %d)",
			l.DailyTokensLeft, ld.tokens, in+it.OutputTokens)
	}
	return ""
}

// collect appends to p.cand the lanes of idx that the pins allow and that can serve the item,
// recording exclusions in ch when explaining.
func (p *Planner) collect(idx []int32, it *Item, ch *Choice, pm, pp string) {
	for _, i := range idx {
		if !p.pin[i] {
			continue // pinned-out lanes are reported once, by decide
		}
		in, _ := it.Input(p.lanes[i])
		k := p.check(i, it, in)
		if k == 0 {
			p.cand = append(p.cand, i)
			continue
		}
		if ch != nil {
			ch.Excluded = append(ch.Excluded, Exclusion{Lane: p.lanes[i], Kind: k, Reason: p.reason(k, i, it, in, pm, pp)})
		}
	}
}

// why explains a successful decision.
func (p *Planner) why(it *Item, ch *Choice, a Assignment, start model.Category, pm, pp string) string {
	var parts []string
	if pm != "" {
		parts = append(parts, "pinned to model "+pm)
	} else if pp != "" {
		parts = append(parts, "pinned to provider "+pp)
	}
	if a.Escalated {
		parts = append(parts, fmt.Sprintf("escalated from %s: %s", start, escalationReason(ch.Excluded, start, it)))
	} else if pm == "" && a.Category < start {
		parts = append(parts, downReason(ch.Excluded, start, a.Category, it))
	}
	l := p.lanes[a.Lane]
	shared := ""
	if p.tiedRun > 1 {
		shared = fmt.Sprintf(", shared with %d equally cheap lanes by earliest finish", p.tiedRun-1)
	}
	switch {
	case p.opts.Prefer == PreferSpeed && len(p.cand) > 1:
		parts = append(parts, fmt.Sprintf("speed: earliest finish of %d capable lanes", len(p.cand)))
	case !p.tied(a.Lane, p.cand[0]):
		parts = append(parts, fmt.Sprintf("cheaper lanes would miss the %s deadline", p.opts.Deadline))
	case l.Free:
		parts = append(parts, "free tier"+shared)
	case len(p.cand) == 1:
		parts = append(parts, "only capable lane")
	default:
		parts = append(parts, "cheapest capable"+shared)
	}
	return strings.Join(parts, "; ")
}

// escalationReason says why no lane of category c could serve the item.
func escalationReason(ex []Exclusion, c model.Category, it *Item) string {
	kinds := map[ExclusionKind]int{}
	first := map[ExclusionKind]string{}
	n := 0
	for _, e := range ex {
		if e.Kind == ExclPinned || e.Lane.rank() != c {
			continue
		}
		n++
		kinds[e.Kind]++
		if _, ok := first[e.Kind]; !ok {
			first[e.Kind] = e.Reason
		}
	}
	if n == 0 {
		return fmt.Sprintf("no %s lane configured", c)
	}
	if len(kinds) == 1 {
		for k := range kinds {
			switch k {
			case ExclContext:
				in := 0
				for _, v := range it.InputTokens {
					in = max(in, v)
				}
				return fmt.Sprintf("no %s lane fits %d tokens of context", c, in+it.reserve())
			case ExclMaxOutput:
				return fmt.Sprintf("no %s lane allows %d output tokens", c, it.reserve())
			case ExclUnavailable:
				return fmt.Sprintf("every %s lane is unavailable (%s)", c, first[k])
			case ExclDaily:
				return fmt.Sprintf("daily limit used on every %s lane", c)
			}
		}
	}
	return fmt.Sprintf("no %s lane can serve it (%s)", c, kindList(kinds, first))
}

// kindList renders exclusion counts: "2 context too small (needs 9, has 8), 1 provider key not set".
func kindList(kinds map[ExclusionKind]int, first map[ExclusionKind]string) string {
	var parts []string
	for k := ExclPinned; k <= ExclMaxOutput; k++ {
		if n := kinds[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d× %s", n, first[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func pinError(pm, pp string) error {
	switch {
	case pm != "" && pp != "":
		return fmt.Errorf("no configured lane matches model %q of provider %q", pm, pp)
	case pm != "":
		return fmt.Errorf("no configured provider has model %q", pm)
	}
	return fmt.Errorf("no configured provider is named %q", pp)
}

// noLaneError summarises why every lane was ruled out; start is the first category of the ladder.
func noLaneError(ex []Exclusion, pm, pp string, start model.Category) error {
	kinds := map[ExclusionKind]int{}
	first := map[ExclusionKind]string{}
	for _, e := range ex {
		if e.Kind == ExclPinned {
			continue
		}
		kinds[e.Kind]++
		if _, ok := first[e.Kind]; !ok {
			first[e.Kind] = e.Reason
		}
	}
	msg := "no lane can serve it"
	if pm != "" {
		msg += " (pinned to model " + pm + ")"
	} else if pp != "" {
		msg += " (pinned to provider " + pp + ")"
	}
	if len(kinds) == 0 {
		if pm == "" && start > model.Tiny {
			// Lanes of lower categories exist but the ladder only goes up.
			return fmt.Errorf("%s: no lane of category %s or above is configured", msg, start)
		}
		return errors.New(msg + ": no lanes configured")
	}
	return errors.New(msg + ": " + kindList(kinds, first))
}
