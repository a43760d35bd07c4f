package selector

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

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

// Bound names what limits a lane's wall time.
type Bound uint8

// The terms of a lane's wall time: max(requests/RPM, tokens/TPM, latency×requests/concurrency).
const (
	BoundNone        Bound = iota // the lane has no work
	BoundRPM                      // requests per minute
	BoundTPM                      // tokens per minute
	BoundConcurrency              // in-flight bound × typical latency: a guess
)

// String returns "rpm", "tpm", "concurrency" or "".
func (b Bound) String() string {
	switch b {
	case BoundRPM:
		return "rpm"
	case BoundTPM:
		return "tpm"
	case BoundConcurrency:
		return "concurrency"
	}
	return ""
}

// LaneTotal is the work a plan gives one lane.
type LaneTotal struct {
	Lane             *Lane
	Prompts          int64
	InputTokens      int64
	OutputTokens     int64
	CostUSD          float64
	EstimatedPrompts int64         // prompts whose input count is an estimate for this lane's tokenizer
	WallTime         time.Duration // estimated time to send this lane's prompts under its limits
	Bound            Bound         // the term that sets WallTime
}

// Guess reports whether the wall time rests on a guessed latency rather than published limits.
func (t LaneTotal) Guess() bool { return t.Bound == BoundConcurrency }

// Summary totals a plan.
type Summary struct {
	Prefer   Prefer
	Deadline time.Duration

	Prompts          int64 // items seen
	Unassigned       int64 // items no lane can serve
	Escalated        int64 // items served above their own category
	InputTokens      int64 // on the assigned lanes
	OutputTokens     int64
	CostUSD          float64
	EstimatedPrompts int64 // assigned items whose input count is an estimate

	// WallTime is the longest lane's wall time (lanes run in parallel); WallTimeGuess is set when that
	// lane's time rests on a guessed latency.
	WallTime      time.Duration
	WallTimeGuess bool
	// DeadlineMet is false when a deadline was given and no assignment found fits it.
	DeadlineMet bool

	Lanes []LaneTotal // one per lane, in the planner's lane order (unused lanes have zero totals)
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

// Explain returns the choice Add would make for the item now, with the reasons, without recording it.
// Choice.Lanes starts with the lane Add would assign, followed by the other alternatives, cheapest first.
func (p *Planner) Explain(it *Item) Choice {
	var ch Choice
	a := p.decide(it, &ch)
	if a.Lane < 0 {
		return ch
	}
	ch.Lanes = append(ch.Lanes, p.lanes[a.Lane])
	for _, i := range p.groups[a.Group] {
		if i != a.Lane {
			ch.Lanes = append(ch.Lanes, p.lanes[i])
		}
	}
	return ch
}

// latency is a typical request's duration in seconds.
func (p *Planner) latency(it *Item) float64 {
	return p.baseLatency + float64(it.OutputTokens)/p.tps
}

// seconds is a lane's wall time for a load, and the term that sets it.
func (p *Planner) seconds(i int32, reqs, tokens int64, latency float64) (float64, Bound) {
	if reqs == 0 {
		return 0, BoundNone
	}
	l := p.lanes[i]
	conc := l.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	t, b := latency/float64(conc), BoundConcurrency
	if l.Limits.RPM > 0 {
		if v := float64(reqs) * 60 / float64(l.Limits.RPM); v >= t {
			t, b = v, BoundRPM
		}
	}
	if l.Limits.TPM > 0 {
		if v := float64(tokens) * 60 / float64(l.Limits.TPM); v >= t {
			t, b = v, BoundTPM
		}
	}
	return t, b
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

// Summary totals what has been assigned so far.
func (p *Planner) Summary() Summary {
	s := Summary{
		Prefer: p.opts.Prefer, Deadline: p.opts.Deadline,
		Prompts: p.prompts, Unassigned: p.unassigned, Escalated: p.escalated,
		Lanes: make([]LaneTotal, len(p.lanes)),
	}
	var longest float64
	for i, l := range p.lanes {
		ld := &p.load[i]
		sec, b := p.seconds(int32(i), ld.reqs, ld.tokens, ld.latency)
		t := LaneTotal{Lane: l, Prompts: ld.reqs, InputTokens: ld.in, OutputTokens: ld.out,
			CostUSD: ld.cost, EstimatedPrompts: ld.estimated, WallTime: seconds(sec), Bound: b}
		s.Lanes[i] = t
		s.InputTokens += ld.in
		s.OutputTokens += ld.out
		s.CostUSD += ld.cost
		s.EstimatedPrompts += ld.estimated
		if ld.reqs > 0 && sec >= longest {
			longest = sec
			s.WallTime, s.WallTimeGuess = t.WallTime, t.Guess()
		}
	}
	s.DeadlineMet = p.opts.Deadline <= 0 || s.WallTime <= p.opts.Deadline
	return s
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
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
