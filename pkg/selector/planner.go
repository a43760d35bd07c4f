package selector

// This file holds the decision: the Planner that assigns each item to a lane, in stream order.

import (
	"math"
	"slices"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/model"
)

// Assignment is where a Planner put one item.
type Assignment struct {
	Lane      int32          // index of the assigned lane in the planner's lanes; -1 when none can serve it
	Group     int32          // index of its ordered alternatives (Planner.Group); -1 when none
	Category  model.Category // category of the lanes used
	Escalated bool           // Category is above the item's own category
	Exact     bool           // InputTokens is an exact count for the assigned lane's tokenizer
	Input     int            // input tokens on the assigned lane
	Cost      float64        // estimated USD on the assigned lane (expected output)
}

// laneLoad is what has been assigned to a lane so far.
type laneLoad struct {
	reqs, in, out, tokens, estimated int64
	latency                          float64 // sum of typical latencies, seconds
	cost                             float64
}

// Planner assigns items to lanes one at a time, in stream order, tracking per-lane load so that
// daily limits are never exceeded, speed shares work by capacity and deadlines add lanes. It keeps
// only per-lane totals and the distinct alternative lists, so it runs in bounded memory over any
// number of items. A Planner is not safe for concurrent use.
type Planner struct {
	lanes []*Lane
	opts  Options
	byCat [model.Reasoning + 1][]int32 // lane indices by ladder rank
	load  []laneLoad

	groups   [][]int32
	groupIdx map[string]int32

	baseLatency float64 // seconds
	tps         float64

	prompts, unassigned, escalated int64

	// scratch, reused per item
	tiedRun int // lanes in the run of equally cheap candidates the pick came from
	cand    []int32
	costs   []float64
	key     []byte
	pin     []bool
}

// NewPlanner returns a planner over a snapshot of lanes. The lanes must not change while it is used.
func NewPlanner(lanes []*Lane, opts Options) *Planner {
	p := &Planner{
		lanes: lanes, opts: opts, load: make([]laneLoad, len(lanes)),
		groupIdx: map[string]int32{},
		cand:     make([]int32, 0, len(lanes)), costs: make([]float64, len(lanes)),
		key: make([]byte, 0, 2*len(lanes)), pin: make([]bool, len(lanes)),
		baseLatency: opts.Latency.Seconds(), tps: opts.OutputTokensPerSecond,
	}
	if p.baseLatency <= 0 {
		p.baseLatency = DefaultLatency.Seconds()
	}
	if p.tps <= 0 {
		p.tps = DefaultOutputTokensPerSecond
	}
	for i, l := range lanes {
		r := l.rank()
		p.byCat[r] = append(p.byCat[r], int32(i))
	}
	return p
}

// Lanes returns the planner's lanes; Assignment.Lane and Group entries index them.
func (p *Planner) Lanes() []*Lane { return p.lanes }

// Group returns the ordered alternatives of an assignment (cheapest first, the assigned lane among
// them) as lane indices. The slice is shared: do not modify it.
func (p *Planner) Group(g int32) []int32 {
	if g < 0 || int(g) >= len(p.groups) {
		return nil
	}
	return p.groups[g]
}

// Add assigns an item and records the load. When no lane can serve it, the assignment has Lane -1
// and the error says why (naming the ruled-out lanes' reasons).
func (p *Planner) Add(it *Item) (Assignment, error) {
	p.prompts++
	a := p.decide(it, nil)
	if a.Lane < 0 {
		p.unassigned++
		ch := Choice{}
		p.decide(it, &ch)
		return a, ch.Err
	}
	if a.Escalated {
		p.escalated++
	}
	ld := &p.load[a.Lane]
	out := int64(it.OutputTokens)
	ld.reqs++
	ld.in += int64(a.Input)
	ld.out += out
	ld.tokens += int64(a.Input) + out
	ld.latency += p.latency(it)
	ld.cost += a.Cost
	if !a.Exact {
		ld.estimated++
	}
	return a, nil
}

// latency is a typical request's duration in seconds.
func (p *Planner) latency(it *Item) float64 {
	return p.baseLatency + float64(it.OutputTokens)/p.tps
}

// finish is lane i's wall time if the item were added to it.
func (p *Planner) finish(i int32, it *Item, in int) float64 {
	ld := &p.load[i]
	t, _ := p.seconds(i, ld.reqs+1, ld.tokens+int64(in+it.OutputTokens), ld.latency+p.latency(it))
	return t
}

// pins returns the effective model and provider pins of an item.
func (p *Planner) pins(it *Item) (string, string) {
	pm, pp := p.opts.PinModel, p.opts.PinProvider
	if pm == "" {
		pm = it.PinModel
	}
	if pp == "" {
		pp = it.PinProvider
	}
	return pm, pp
}

// markPins sets p.pin[i] for the lanes the pins allow and reports how many (see Pinned).
func (p *Planner) markPins(pm, pp string) int {
	return markPins(p.lanes, p.pin, pm, pp)
}

func markPins(lanes []*Lane, mark []bool, pm, pp string) int {
	n := 0
	for i, l := range lanes {
		ok := (pp == "" || l.Provider == pp) && (pm == "" || l.Name == pm)
		mark[i] = ok
		if ok {
			n++
		}
	}
	if n > 0 || pm == "" {
		return n
	}
	for i, l := range lanes {
		ok := (pp == "" || l.Provider == pp) && len(pm) == len(l.Provider)+1+len(l.Name) &&
			strings.HasPrefix(pm, l.Provider) && pm[len(l.Provider)] == '/' && strings.HasSuffix(pm, l.Name)
		mark[i] = ok
		if ok {
			n++
		}
	}
	return n
}

// Pinned returns the lanes that a model pin and a provider pin allow ("" pins nothing), whether or
// not they are available. A pinned model matches a lane's model name exactly; when no lane has that
// name, it may be written "provider/model".
func Pinned(lanes []*Lane, model, provider string) []*Lane {
	mark := make([]bool, len(lanes))
	markPins(lanes, mark, model, provider)
	var out []*Lane
	for i, ok := range mark {
		if ok {
			out = append(out, lanes[i])
		}
	}
	return out
}

// check reports why lane i cannot serve the item now (0 when it can).
func (p *Planner) check(i int32, it *Item, in int) ExclusionKind {
	l := p.lanes[i]
	switch {
	case !l.Available:
		return ExclUnavailable
	case l.MaxOutputTokens > 0 && it.reserve() > l.MaxOutputTokens:
		return ExclMaxOutput
	case l.ContextWindow > 0 && in+it.reserve() > l.ContextWindow:
		return ExclContext
	}
	ld := &p.load[i]
	if (l.DailyRequestsLeft >= 0 && ld.reqs+1 > l.DailyRequestsLeft) ||
		(l.DailyTokensLeft >= 0 && ld.tokens+int64(in+it.OutputTokens) > l.DailyTokensLeft) {
		return ExclDaily
	}
	return 0
}

// decide picks a lane for the item without recording it; with ch it also explains.
func (p *Planner) decide(it *Item, ch *Choice) Assignment {
	none := Assignment{Lane: -1, Group: -1}
	pm, pp := p.pins(it)
	pinned := pm != "" || pp != ""
	matched := len(p.lanes)
	if pinned {
		matched = p.markPins(pm, pp)
	} else {
		for i := range p.pin {
			p.pin[i] = true
		}
	}
	if ch != nil {
		ch.Requested = it.Category
		if pinned {
			for i := range p.lanes {
				if !p.pin[i] {
					in, _ := it.Input(p.lanes[i])
					ch.Excluded = append(ch.Excluded, Exclusion{Lane: p.lanes[i], Kind: ExclPinned,
						Reason: p.reason(ExclPinned, int32(i), it, in, pm, pp)})
				}
			}
		}
	}
	if matched == 0 {
		if ch != nil {
			ch.Err = pinError(pm, pp)
		}
		return none
	}

	p.cand = p.cand[:0]
	start := max(it.Category, model.Tiny)
	used := start
	if pm != "" {
		// A pinned model is served by that model whatever its category: no ladder.
		for c := model.Tiny; c <= model.Reasoning; c++ {
			p.collect(p.byCat[c], it, ch, pm, pp)
		}
	} else {
		for c := start; c <= model.Reasoning; c++ {
			p.collect(p.byCat[c], it, ch, pm, pp)
			if len(p.cand) > 0 {
				used = c
				break
			}
		}
		if len(p.cand) == 0 { // too large for every model from its category up: any that fits
			used = p.fitBelow(it, start, ch, pm, pp)
		}
	}
	if len(p.cand) == 0 {
		if ch != nil {
			ch.Err = noLaneError(ch.Excluded, pm, pp, start)
		}
		return none
	}

	// Order: free first, then this prompt's cost, then configuration order.
	for _, i := range p.cand {
		in, _ := it.Input(p.lanes[i])
		p.costs[i] = p.lanes[i].Cost(in, it.OutputTokens)
	}
	for a := 1; a < len(p.cand); a++ {
		for b := a; b > 0 && p.less(p.cand[b], p.cand[b-1]); b-- {
			p.cand[b], p.cand[b-1] = p.cand[b-1], p.cand[b]
		}
	}
	if pm != "" {
		used = p.lanes[p.cand[0]].rank()
	}

	var pick int32
	if p.opts.Prefer == PreferSpeed {
		pick, _ = p.earliest(p.cand, it)
		p.tiedRun = len(p.cand)
	} else {
		pick = p.cheapest(it)
	}

	in, exact := it.Input(p.lanes[pick])
	a := Assignment{
		Lane: pick, Group: p.intern(), Category: used,
		Escalated: pm == "" && used > start && it.Category != model.Unknown,
		Exact:     exact, Input: in, Cost: p.costs[pick],
	}
	if ch != nil {
		ch.Category, ch.Escalated = used, a.Escalated
		ch.Why = p.why(it, ch, a, start, pm, pp)
	}
	return a
}

// cheapest picks, under PreferCost, from the ordered candidates: the first run of equally cheap lanes
// (typically several free tiers) shares the work by earliest finish; with a deadline, the first run
// whose earliest finish fits it, else the lane that finishes first overall.
func (p *Planner) cheapest(it *Item) int32 {
	deadline := p.opts.Deadline.Seconds()
	best, bestT := p.cand[0], math.Inf(1)
	for start := 0; start < len(p.cand); {
		end := start + 1
		for end < len(p.cand) && p.tied(p.cand[start], p.cand[end]) {
			end++
		}
		p.tiedRun = end - start
		if deadline <= 0 && end-start == 1 {
			return p.cand[start]
		}
		i, t := p.earliest(p.cand[start:end], it)
		if deadline <= 0 || t <= deadline {
			return i
		}
		if t < bestT {
			best, bestT = i, t
		}
		start = end
	}
	p.tiedRun = 1
	return best
}

// earliest returns the lane among cands that would finish first with the item added, and that time;
// ties go to the earlier (cheaper) lane.
func (p *Planner) earliest(cands []int32, it *Item) (int32, float64) {
	best, bestT := cands[0], math.Inf(1)
	for _, i := range cands {
		in, _ := it.Input(p.lanes[i])
		if t := p.finish(i, it, in); t < bestT {
			best, bestT = i, t
		}
	}
	return best, bestT
}

// tied reports whether two candidates are equally cheap for the current item.
func (p *Planner) tied(a, b int32) bool {
	return p.lanes[a].Free == p.lanes[b].Free && p.costs[a] == p.costs[b]
}

// less orders candidate lanes: free first, then cheaper for this prompt, then configuration order.
func (p *Planner) less(a, b int32) bool {
	la, lb := p.lanes[a], p.lanes[b]
	if la.Free != lb.Free {
		return la.Free
	}
	if p.costs[a] != p.costs[b] {
		return p.costs[a] < p.costs[b]
	}
	return a < b
}

// intern returns the id of the current candidate list, adding it when new.
func (p *Planner) intern() int32 {
	p.key = p.key[:0]
	for _, i := range p.cand {
		p.key = append(p.key, byte(i), byte(i>>8))
	}
	if g, ok := p.groupIdx[string(p.key)]; ok {
		return g
	}
	g := int32(len(p.groups))
	p.groups = append(p.groups, slices.Clone(p.cand))
	p.groupIdx[string(p.key)] = g
	return g
}

// Plan is the selection for a whole batch (or a look-ahead window of it).
type Plan struct {
	Summary
	Lanes  []*Lane
	Items  []Assignment  // by position in the items given to BuildPlan
	Errors map[int]error // by position: why no lane can serve that item

	groups [][]int32
}

// BuildPlan assigns every item, in order, under the policy (see Planner) and totals the result.
func BuildPlan(items []Item, lanes []*Lane, opts Options) *Plan {
	p := NewPlanner(lanes, opts)
	pl := &Plan{Lanes: lanes, Items: make([]Assignment, len(items))}
	for i := range items {
		a, err := p.Add(&items[i])
		pl.Items[i] = a
		if err != nil {
			if pl.Errors == nil {
				pl.Errors = map[int]error{}
			}
			pl.Errors[i] = err
		}
	}
	pl.Summary = p.Summary()
	pl.groups = p.groups
	return pl
}

// Alternatives returns the ordered lanes item i may use: its assigned lane first, then the others
// of its category, cheapest first. Nil when no lane can serve it.
func (pl *Plan) Alternatives(i int) []*Lane {
	a := pl.Items[i]
	if a.Lane < 0 {
		return nil
	}
	out := []*Lane{pl.Lanes[a.Lane]}
	for _, j := range pl.groups[a.Group] {
		if j != a.Lane {
			out = append(out, pl.Lanes[j])
		}
	}
	return out
}
