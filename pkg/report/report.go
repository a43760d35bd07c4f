// Package report turns a result file (the JSONL output of `llmbatch run`) into the figures of a run
// report — ok throughput over time per lane against its ceiling, cumulative cost per model, latency
// percentiles over time, 429s, retries and failures by class over time, and a per-model table — and
// renders them as a terminal summary (Text) or one self-contained HTML page with charts (HTML).
//
// Every figure is computed from the result lines alone, so it can be checked against the file:
// times come from started_at/finished_at, throughput from ok lines, cost from cost_usd, latency from
// latency_ms, and 429s and other failed attempts by class from the attempt log (`run -v`).
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/results"
)

// Options tune Compute.
type Options struct {
	// Limits are the lanes' configured rate limits by "provider/model"; a lane's ceiling is
	// min(RPM, TPM / its mean input+output tokens per ok line) requests a minute. Lanes without
	// limits show no ceiling.
	Limits map[string]Limit
	// MaxBuckets bounds the number of time buckets (default 60); the bucket width is the smallest
	// of 1s, 2s, 5s, 10s, 15s, 30s, 1m, 2m, 5m, … that fits the run's span in that many.
	MaxBuckets int
}

// Limit is a lane's configured requests and tokens per minute (0 = unknown).
type Limit struct{ RPM, TPM int }

// Ceiling is the most requests a minute l allows for requests of tokensPerRequest tokens each;
// 0 when unknown.
func (l Limit) Ceiling(tokensPerRequest float64) float64 {
	c := float64(l.RPM)
	if l.TPM > 0 && tokensPerRequest > 0 {
		if t := float64(l.TPM) / tokensPerRequest; c == 0 || t < c {
			c = t
		}
	}
	return c
}

// Report holds the figures of one result file. Series values are per time bucket; bucket i covers
// [Start+i·Step, Start+(i+1)·Step).
type Report struct {
	Source   string        `json:"source"`
	Start    time.Time     `json:"start"` // earliest started_at (or finished_at)
	End      time.Time     `json:"end"`   // latest finished_at
	Step     time.Duration `json:"step_ns"`
	Buckets  int           `json:"buckets"`
	Lines    int           `json:"lines"`
	OK       int           `json:"ok"`
	Failed   int           `json:"failed"`
	Cached   int           `json:"cached"`  // ok lines answered from the response cache
	Untimed  int           `json:"untimed"` // lines without timestamps: in the table, not in the charts
	Attempts int           `json:"attempts"`
	Retries  int           `json:"retries"`      // attempts after each prompt's first
	Logged   int           `json:"logged_lines"` // lines with an attempt log (run -v)
	CostUSD  float64       `json:"cost_usd"`
	// SavedUSD is what the cache hits cost when they were first bought (cached_cost_usd).
	SavedUSD float64 `json:"saved_usd"`

	Models []ModelRow `json:"models"`
	// Throughput is ok requests per minute per lane ("provider/model"), each with its ceiling when
	// known; cache hits are the series "cache".
	Throughput []Series `json:"throughput"`
	// Cost is the cumulative cost in USD per model at the end of each bucket.
	Cost []Series `json:"cost"`
	// Latency is p50, p90 and p99 of latency_ms of the ok lines finished in each bucket (NaN = none).
	Latency []Series `json:"latency"`
	// Events counts per bucket: "429" (rate-limited attempts), "retries", "attempt failed: CLASS"
	// (other failed attempts, from attempt logs) and "failed: CLASS" (error lines).
	Events []Series `json:"events"`
}

// Series is one named line or bar series.
type Series struct {
	Name    string    `json:"name"`
	Values  []float64 `json:"-"`
	Ceiling float64   `json:"ceiling,omitempty"`
	Total   float64   `json:"total"`
}

// MarshalJSON writes NaN values (no sample in the bucket) as null.
func (s Series) MarshalJSON() ([]byte, error) {
	vals := make([]*float64, len(s.Values))
	for i := range s.Values {
		if !math.IsNaN(s.Values[i]) {
			v := money.Round(s.Values[i])
			vals[i] = &v
		}
	}
	type plain Series
	return json.Marshal(struct {
		plain
		Values []*float64 `json:"values"`
	}{plain(s), vals})
}

// ModelRow is one row of the per-model table.
type ModelRow struct {
	Provider      string  `json:"provider"`
	Model         string  `json:"model"`
	OK            int     `json:"ok"`
	Failed        int     `json:"failed"`
	Cached        int     `json:"cached"`
	InputTokens   int     `json:"input_tokens"`
	OutputTokens  int     `json:"output_tokens"`
	CostUSD       float64 `json:"cost_usd"`
	SavedUSD      float64 `json:"saved_usd"`
	Attempts      int     `json:"attempts"`
	Retries       int     `json:"retries"`
	RateLimited   int     `json:"rate_limited"` // 429 attempts in the attempt logs
	P50, P90, P99 int64   `json:"-"`
	// PerMinute is the lane's ok requests (cache hits excluded) per minute between its first start
	// and its last finish; Ceiling its configured ceiling (0 = unknown).
	PerMinute float64 `json:"ok_per_minute"`
	Ceiling   float64 `json:"ceiling_per_minute,omitempty"`
}

// MarshalJSON names the latency fields.
func (m ModelRow) MarshalJSON() ([]byte, error) {
	type plain ModelRow
	return json.Marshal(struct {
		plain
		P50 int64 `json:"latency_p50_ms"`
		P90 int64 `json:"latency_p90_ms"`
		P99 int64 `json:"latency_p99_ms"`
	}{plain(m), m.P50, m.P90, m.P99})
}

// Lane is the row's "provider/model" key.
func (m ModelRow) Lane() string { return m.Provider + "/" + m.Model }

// line is what the report keeps of one result line.
type line struct {
	lane          string
	provider      string
	model         string
	ok, cached    bool
	start, finish time.Time // zero when absent
	latencyMS     int64
	cost, saved   float64
	in, out       int
	attempts      int
	errType       string
	logged        bool // the line has an attempt log
	log           []event
}

// event is one failed attempt from the attempt log.
type event struct {
	at              time.Time
	lane            string // where the attempt went: "provider/model"
	provider, model string
	class           string
}

// Results are the parsed lines of one result file.
type Results struct {
	Name  string
	lines []line
}

// Len is the number of result lines read.
func (rs *Results) Len() int { return len(rs.lines) }

// Read parses a result file in the default format. name is used in error messages, which give the
// line number and the field at fault.
func Read(r io.Reader, name string) (*Results, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var out []line
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var res results.Result
		if err := json.Unmarshal(b, &res); err != nil {
			return nil, fmt.Errorf("%s:%d: not a result line: %v", name, n, err)
		}
		if res.CustomID == "" && bytes.Contains(b, []byte(`"response"`)) {
			return nil, fmt.Errorf("%s:%d: an OpenAI Batch format line (--format openai); report reads the default format: run again without --format openai", name, n)
		}
		if res.Status != results.StatusOK && res.Status != results.StatusError {
			return nil, fmt.Errorf("%s:%d: field status: %q is neither ok nor error; is this a result file of llmbatch run?", name, n, res.Status)
		}
		l, err := fromResult(&res)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: line %d: %w", name, n+1, err)
	}
	return &Results{Name: name, lines: out}, nil
}

func fromResult(r *results.Result) (line, error) {
	l := line{provider: r.Provider, model: r.Model, ok: r.Status == results.StatusOK, cached: r.Cached,
		latencyMS: r.LatencyMS, cost: r.CostUSD, saved: r.CachedCostUSD, attempts: r.Attempts}
	if l.provider == "" { // refused before any lane took it
		l.provider = noLane
	}
	l.lane = l.provider + "/" + l.model
	if r.Usage != nil {
		l.in, l.out = r.Usage.InputTokens, r.Usage.OutputTokens
	}
	if r.Error != nil {
		l.errType = r.Error.Type
	}
	var err error
	if l.start, err = parseTime("started_at", r.StartedAt); err != nil {
		return l, err
	}
	if l.finish, err = parseTime("finished_at", r.FinishedAt); err != nil {
		return l, err
	}
	if l.start.IsZero() {
		l.start = l.finish
	}
	l.logged = len(r.AttemptLog) > 0
	for i, a := range r.AttemptLog {
		if a.ErrorType == "" {
			continue
		}
		at, err := parseTime(fmt.Sprintf("attempt_log[%d].at", i), a.At)
		if err != nil {
			return l, err
		}
		l.log = append(l.log, event{at: at, lane: a.Provider + "/" + a.Model, provider: a.Provider, model: a.Model, class: a.ErrorType})
	}
	return l, nil
}

// noLane is the provider of the rows of prompts that no lane took (refused before sending).
const noLane = "(none)"

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("field %s: %q is not an RFC 3339 time", field, s)
	}
	return t, nil
}

// steps are the bucket widths Compute chooses from.
var steps = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// Compute derives the report's figures from the lines Read returned.
func Compute(rs *Results, o Options) *Report {
	if o.MaxBuckets <= 0 {
		o.MaxBuckets = 60
	}
	lines := rs.lines
	r := &Report{Source: rs.Name, Lines: len(lines)}
	for _, l := range lines {
		if l.finish.IsZero() {
			continue
		}
		if r.Start.IsZero() || l.start.Before(r.Start) {
			r.Start = l.start
		}
		if l.finish.After(r.End) {
			r.End = l.finish
		}
	}
	span := r.End.Sub(r.Start)
	r.Step = steps[len(steps)-1]
	for _, s := range steps {
		if span/s < time.Duration(o.MaxBuckets) {
			r.Step = s
			break
		}
	}
	r.Buckets = int(span/r.Step) + 1
	if r.Start.IsZero() {
		r.Buckets = 0
	}
	bucket := func(t time.Time) int { return min(int(t.Sub(r.Start)/r.Step), r.Buckets-1) }

	type acc struct {
		row       *ModelRow
		lat       []int64
		ok        []float64 // non-cached ok per bucket
		cost      []float64
		first     time.Time
		last      time.Time
		timedOK   int
		hasTiming bool
	}
	lanes := map[string]*acc{}
	var order []string
	newSeries := func() []float64 { return make([]float64, r.Buckets) }
	latBuckets := make([][]int64, r.Buckets)
	cacheHits := newSeries()
	rateLimited := map[string]int{} // 429s by the lane of the attempt
	events := map[string][]float64{}
	ev := func(name string, t time.Time) {
		s, ok := events[name]
		if !ok {
			s = newSeries()
			events[name] = s
		}
		s[bucket(t)]++
	}
	laneAcc := func(name, provider, model string) *acc {
		a := lanes[name]
		if a == nil {
			a = &acc{row: &ModelRow{Provider: provider, Model: model}, ok: newSeries(), cost: newSeries()}
			lanes[name] = a
			order = append(order, name)
		}
		return a
	}
	for _, l := range lines {
		a := laneAcc(l.lane, l.provider, l.model)
		m := a.row
		m.Attempts += l.attempts
		m.Retries += max(l.attempts-1, 0)
		r.Attempts += l.attempts
		r.Retries += max(l.attempts-1, 0)
		m.InputTokens += l.in
		m.OutputTokens += l.out
		m.CostUSD += l.cost
		r.CostUSD += l.cost
		switch {
		case l.ok && l.cached:
			m.Cached++
			r.Cached++
			m.SavedUSD += l.saved
			r.SavedUSD += l.saved
		case l.ok:
			m.OK++
			r.OK++
			a.lat = append(a.lat, l.latencyMS)
		default:
			m.Failed++
			r.Failed++
		}
		if l.logged {
			r.Logged++
		}
		for _, e := range l.log {
			if e.class == "rate_limit" {
				rateLimited[e.lane]++
				laneAcc(e.lane, e.provider, e.model) // a lane may have had only 429s
			}
		}
		if l.finish.IsZero() {
			r.Untimed++
			continue
		}
		b := bucket(l.finish)
		a.cost[b] += l.cost
		switch {
		case l.ok && l.cached:
			cacheHits[b]++
		case l.ok:
			a.ok[b]++
			a.timedOK++
			latBuckets[b] = append(latBuckets[b], l.latencyMS)
			if !a.hasTiming || l.start.Before(a.first) {
				a.first = l.start
			}
			if !a.hasTiming || l.finish.After(a.last) {
				a.last = l.finish
			}
			a.hasTiming = true
		default:
			ev("failed: "+l.errType, l.finish)
		}
		// A retry is placed at the failed attempt it follows when the log has it, else at the
		// prompt's finish. A failed prompt's last logged attempt is followed by none.
		retries := max(l.attempts-1, 0)
		followed := len(l.log)
		if !l.ok && followed > 0 {
			followed--
		}
		for i, e := range l.log {
			if e.class == "rate_limit" {
				ev("429", e.at)
			} else {
				ev("attempt failed: "+e.class, e.at)
			}
			if i < followed && retries > 0 {
				ev("retries", e.at)
				retries--
			}
		}
		for ; retries > 0; retries-- {
			ev("retries", l.finish)
		}
	}

	sort.Strings(order)
	perMin := r.Step.Minutes()
	for _, name := range order {
		a := lanes[name]
		m := a.row
		m.P50, m.P90, m.P99 = percentiles(a.lat)
		m.RateLimited = rateLimited[name]
		if a.hasTiming {
			if d := a.last.Sub(a.first); d > 0 {
				m.PerMinute = float64(a.timedOK) / d.Minutes()
			}
		}
		if m.OK > 0 {
			m.Ceiling = o.Limits[name].Ceiling(float64(m.InputTokens+m.OutputTokens) / float64(m.OK+m.Cached))
		}
		r.Models = append(r.Models, *m)
		if m.OK > 0 {
			s := Series{Name: name, Values: make([]float64, r.Buckets), Ceiling: m.Ceiling, Total: float64(a.timedOK)}
			for i, v := range a.ok {
				s.Values[i] = v / perMin
			}
			r.Throughput = append(r.Throughput, s)
		}
		if m.CostUSD > 0 {
			s := Series{Name: name, Values: make([]float64, r.Buckets)}
			sum := 0.0
			for i, v := range a.cost {
				sum += v
				s.Values[i] = sum
			}
			s.Total = m.CostUSD
			r.Cost = append(r.Cost, s)
		}
	}
	if r.Cached > 0 {
		s := Series{Name: "cache", Values: make([]float64, r.Buckets)}
		for i, v := range cacheHits {
			s.Values[i] = v / perMin
			s.Total += v
		}
		r.Throughput = append(r.Throughput, s)
	}
	for _, p := range []struct {
		name string
		q    int
	}{{"p50", 50}, {"p90", 90}, {"p99", 99}} {
		s := Series{Name: p.name, Values: make([]float64, r.Buckets)}
		for i, b := range latBuckets {
			s.Values[i] = math.NaN()
			if len(b) > 0 {
				slices.Sort(b)
				s.Values[i] = float64(rank(b, p.q))
			}
		}
		r.Latency = append(r.Latency, s)
	}
	names := make([]string, 0, len(events))
	for n := range events {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return eventOrder(a) - eventOrder(b) + cmpStr(a, b) })
	for _, n := range names {
		s := Series{Name: n, Values: events[n]}
		for _, v := range s.Values {
			s.Total += v
		}
		r.Events = append(r.Events, s)
	}
	r.CostUSD, r.SavedUSD = money.Round(r.CostUSD), money.Round(r.SavedUSD)
	for i := range r.Models {
		r.Models[i].CostUSD = money.Round(r.Models[i].CostUSD)
		r.Models[i].SavedUSD = money.Round(r.Models[i].SavedUSD)
	}
	return r
}

// eventOrder groups event series: 429s, retries, failed attempts, then failed prompts.
func eventOrder(name string) int {
	switch {
	case name == "429":
		return 0
	case name == "retries":
		return 100
	case len(name) > 7 && name[:7] == "attempt":
		return 200
	}
	return 300
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// percentiles returns p50, p90 and p99 of v by the nearest-rank method (0 when v is empty).
func percentiles(v []int64) (p50, p90, p99 int64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	slices.Sort(v)
	return rank(v, 50), rank(v, 90), rank(v, 99)
}

// rank is the nearest-rank q-th percentile of sorted v: the smallest value with at least q% of the
// values at or below it.
func rank(sorted []int64, q int) int64 {
	i := (q*len(sorted) + 99) / 100
	return sorted[max(i-1, 0)]
}

// UnmarshalJSON reads what MarshalJSON writes (null values become NaN).
func (s *Series) UnmarshalJSON(b []byte) error {
	type plain Series
	var v struct {
		plain
		Values []*float64 `json:"values"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Series(v.plain)
	s.Values = make([]float64, len(v.Values))
	for i, x := range v.Values {
		s.Values[i] = math.NaN()
		if x != nil {
			s.Values[i] = *x
		}
	}
	return nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *ModelRow) UnmarshalJSON(b []byte) error {
	type plain ModelRow
	var v struct {
		plain
		P50 int64 `json:"latency_p50_ms"`
		P90 int64 `json:"latency_p90_ms"`
		P99 int64 `json:"latency_p99_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = ModelRow(v.plain)
	m.P50, m.P90, m.P99 = v.P50, v.P90, v.P99
	return nil
}
