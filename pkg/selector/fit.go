package selector

import (
	"fmt"

	"github.com/llmbatch/llmbatch/pkg/model"
)

// tooLargeAbove reports whether the item failed the ladder from start upwards only for its size:
// every lane of category start or above that the pins allow is too small for its context or its
// output, or there is none. Only such a prompt may step down to a category whose models fit it; a
// prompt whose lanes are merely down or out of quota waits for them instead of being downgraded.
func (p *Planner) tooLargeAbove(it *Item, start model.Category) bool {
	for c := start; c <= model.Reasoning; c++ {
		for _, i := range p.byCat[c] {
			if !p.pin[i] {
				continue
			}
			in, _ := it.Input(p.lanes[i])
			if k := p.check(i, it, in); k != ExclContext && k != ExclMaxOutput {
				return false
			}
		}
	}
	return true
}

// fitBelow collects, after the ladder from start upwards found nothing, the lanes of the nearest
// category below start that can serve the item, and returns that category (start when none can).
func (p *Planner) fitBelow(it *Item, start model.Category, ch *Choice, pm, pp string) model.Category {
	if !p.tooLargeAbove(it, start) {
		return start
	}
	for c := start - 1; c >= model.Tiny; c-- {
		p.collect(p.byCat[c], it, ch, pm, pp)
		if len(p.cand) > 0 {
			return c
		}
	}
	return start
}

// downReason explains a prompt served below its category because nothing at or above it fits.
func downReason(ex []Exclusion, start, used model.Category, it *Item) string {
	return fmt.Sprintf("served by a %s lane, the nearest category whose models fit it: %s", used,
		escalationReason(ex, start, it))
}
