package progress

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/pkg/money"
)

// Summary collects per-lane statistics over a run for the final table (Render) and for --json and
// logs (JSON). Memory is bounded per lane whatever the number of requests. It is safe for
// concurrent use; the engine calls Add from its writer goroutine, once per finished prompt, as the
// result is written, so the time of Add is the prompt's completion time.
type Summary struct {
	mu    sync.Mutex
	now   func() time.Time
	start time.Time
	end   time.Time // zero until Finish
	lanes map[laneKey]*laneStats
	ceil  map[laneKey]float64
	// unfinishedRetries are the retries of prompts left without a result: they belong to no lane's
	// row but to the totals.
	unfinishedRetries int
}

type laneKey struct{ provider, model string }

type laneStats struct {
	ok, failed    int
	input, output int64
	cost          float64
	rateLimited   int
	retries       int
	latency       latencyHist // of successful prompts only: a failure's time says little about the lane
	// first is the earliest start of a prompt's final attempt (completion time minus latency) and
	// last the latest completion: the lane's busy time is last - first.
	first, last time.Time
}

// CeilingWindow is the window of the limits behind a ceiling (RPM and TPM are per minute): a lane
// whose bucket starts full can complete one window's worth at once, so in a busy time T the limits
// allow at most ceiling × (T + CeilingWindow) requests, and a share is only shown once T reaches
// one window (below that it mostly measures the initial burst).
const CeilingWindow = time.Minute

// NewSummary returns an empty summary whose wall time starts now (now is time.Now when nil).
func NewSummary(now func() time.Time) *Summary {
	if now == nil {
		now = time.Now
	}
	return &Summary{now: now, start: now(), lanes: make(map[laneKey]*laneStats), ceil: make(map[laneKey]float64)}
}

// Add records the outcome of one finished prompt under its final (provider, model), completed now;
// an Unfinished outcome adds only its retries to the totals.
func (s *Summary) Add(o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.Unfinished {
		s.unfinishedRetries += o.Retries
		return
	}
	k := laneKey{o.Provider, o.Model}
	st := s.lanes[k]
	if st == nil {
		st = &laneStats{}
		s.lanes[k] = st
	}
	now := s.now()
	if began := now.Add(-max(o.Latency, 0)); st.first.IsZero() || began.Before(st.first) {
		st.first = began
	}
	if now.After(st.last) {
		st.last = now
	}
	if o.OK {
		st.ok++
		st.latency.add(o.Latency)
	} else {
		st.failed++
	}
	st.input += int64(o.InputTokens)
	st.output += int64(o.OutputTokens)
	st.cost += o.CostUSD
	st.rateLimited += o.RateLimited
	st.retries += o.Retries
}

// AddRateLimited records n 429 answers lane (provider, model) received, whatever became of their
// prompts (answered there or on another lane, failed, or left for a resumed run): the 429 column
// counts every 429 of the run under the lane that sent it. Outcome.RateLimited adds to the same count.
func (s *Summary) AddRateLimited(provider, model string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := laneKey{provider, model}
	st := s.lanes[k]
	if st == nil {
		st = &laneStats{}
		s.lanes[k] = st
	}
	st.rateLimited += n
}

// SetCeiling records a lane's theoretical ceiling in requests per second (min(RPM, TPM/tokens per
// request)/60; see ratelimit.Limits.Ceiling), so the report can show the share of what the limits
// allowed that the run achieved. A ceiling of 0 means unknown.
func (s *Summary) SetCeiling(provider, model string, requestsPerSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ceil[laneKey{provider, model}] = requestsPerSecond
}

// Finish stops the wall clock; later reports use the time of the first Finish. Without Finish,
// reports measure up to the moment they are made.
func (s *Summary) Finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end.IsZero() {
		s.end = s.now()
	}
}

// Report is the summary of a run as JSON, for --json output and logs. Costs are rounded with
// money.Round.
type Report struct {
	WallSeconds  float64 `json:"wall_seconds"`
	Requests     int     `json:"requests"` // finished prompts: ok + failed
	OK           int     `json:"ok"`
	Failed       int     `json:"failed"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
	// RateLimited is the 429 answers the run received (the lanes' rows: each under the lane that got
	// it); Retries the requests sent after each prompt's first: the lanes' rows (finished prompts)
	// plus Unfinished.
	RateLimited       int          `json:"rate_limited"`
	Retries           int          `json:"retries"`
	RequestsPerSecond float64      `json:"requests_per_second"`
	Models            []LaneReport `json:"models"` // sorted by provider, then model
	// Unfinished is the part of Retries made by prompts left without a result (omitted when none):
	// the lanes' rows plus it make the totals.
	Unfinished *UnfinishedReport `json:"unfinished,omitempty"`
}

// UnfinishedReport is the retries of the prompts a run left without a result.
type UnfinishedReport struct {
	Retries int `json:"retries"`
}

// LaneReport is one (provider, model) of a Report.
type LaneReport struct {
	Provider      string  `json:"provider"`
	Model         string  `json:"model"`
	Requests      int     `json:"requests"`
	OK            int     `json:"ok"`
	Failed        int     `json:"failed"`
	InputTokens   int64   `json:"input_tokens"`
	OutputTokens  int64   `json:"output_tokens"`
	CostUSD       float64 `json:"cost_usd"`
	RateLimited   int     `json:"rate_limited"`
	Retries       int     `json:"retries"`
	LatencyMeanMS float64 `json:"latency_mean_ms"` // successful prompts only
	LatencyP95MS  float64 `json:"latency_p95_ms"`
	// BusySeconds runs from the start of the earliest final attempt to the last completion on the
	// lane; RequestsPerSecond is finished prompts over it (0 when it is 0).
	BusySeconds       float64 `json:"busy_seconds"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// CeilingRPS is the lane's ceiling from SetCeiling (omitted when unknown). CeilingShare is the
	// ok count over the most the limits allowed in the busy time, CeilingRPS × (busy + CeilingWindow),
	// so it never exceeds 1; it is omitted when the ceiling is unknown or the lane was busy for less
	// than CeilingWindow.
	CeilingRPS   float64  `json:"ceiling_rps,omitempty"`
	CeilingShare *float64 `json:"ceiling_share,omitempty"`
}

// JSON returns the summary so far as a Report.
func (s *Summary) JSON() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := s.end
	if end.IsZero() {
		end = s.now()
	}
	wall := end.Sub(s.start).Seconds()
	r := Report{WallSeconds: wall, Models: make([]LaneReport, 0, len(s.lanes))}
	var cost float64
	for k, st := range s.lanes {
		busy := st.last.Sub(st.first)
		lr := LaneReport{
			Provider:      k.provider,
			Model:         k.model,
			Requests:      st.ok + st.failed,
			OK:            st.ok,
			Failed:        st.failed,
			InputTokens:   st.input,
			OutputTokens:  st.output,
			CostUSD:       money.Round(st.cost),
			RateLimited:   st.rateLimited,
			Retries:       st.retries,
			LatencyMeanMS: ms(st.latency.mean()),
			LatencyP95MS:  ms(st.latency.quantile(0.95)),
			BusySeconds:   busy.Seconds(),
		}
		if busy > 0 {
			lr.RequestsPerSecond = float64(lr.Requests) / busy.Seconds()
		}
		if c := s.ceil[k]; c > 0 {
			lr.CeilingRPS = c
			if busy >= CeilingWindow {
				share := min(float64(st.ok)/(c*(busy+CeilingWindow).Seconds()), 1)
				lr.CeilingShare = &share
			}
		}
		r.Models = append(r.Models, lr)
		r.Requests += lr.Requests
		r.OK += lr.OK
		r.Failed += lr.Failed
		r.InputTokens += lr.InputTokens
		r.OutputTokens += lr.OutputTokens
		cost += st.cost
		r.RateLimited += lr.RateLimited
		r.Retries += lr.Retries
	}
	if n := s.unfinishedRetries; n > 0 {
		r.Unfinished = &UnfinishedReport{Retries: n}
		r.Retries += n
	}
	r.CostUSD = money.Round(cost)
	if wall > 0 {
		r.RequestsPerSecond = float64(r.Requests) / wall
	}
	slices.SortFunc(r.Models, func(a, b LaneReport) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Model, b.Model))
	})
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Render writes the summary for an 80-column terminal; see RenderWidth.
func (s *Summary) Render(w io.Writer) error { return s.RenderWidth(w, 80) }

// RenderWidth writes the summary in at most width columns: two aligned tables (counts, cost, rate
// and share of the ceiling; then tokens and latency), one row per (provider, model) and a total row,
// followed by the one wall time of the run. When the tables would be wider than width (a narrow
// terminal, long model names) each lane is written as a short block of labelled lines instead.
// It returns the first write error.
func (s *Summary) RenderWidth(w io.Writer, width int) error {
	r := s.JSON()
	var b bytes.Buffer
	renderTables(&b, r)
	if maxLineWidth(b.String()) > width {
		b.Reset()
		renderNarrow(&b, r)
	}
	fmt.Fprintf(&b, "wall time %s\n", seconds(r.WallSeconds))
	_, err := w.Write(b.Bytes())
	return err
}

func renderTables(w io.Writer, r Report) {
	counts := [][]string{{"LANE", "OK", "FAILED", "429s", "RETRIES", "COST", "REQ/S", "OF CEILING"}}
	usage := [][]string{{"LANE", "IN TOKENS", "OUT TOKENS", "MEAN LATENCY", "P95 LATENCY"}}
	for _, m := range r.Models {
		lane := m.Provider + "/" + m.Model
		counts = append(counts, []string{lane, strconv.Itoa(m.OK), strconv.Itoa(m.Failed), strconv.Itoa(m.RateLimited),
			strconv.Itoa(m.Retries), money.Format(m.CostUSD), rate(m.RequestsPerSecond), share(m)})
		usage = append(usage, []string{lane, count(m.InputTokens), count(m.OutputTokens),
			latency(m.LatencyMeanMS), latency(m.LatencyP95MS)})
	}
	if u := r.Unfinished; u != nil {
		counts = append(counts, []string{"(unfinished)", "", "", "", strconv.Itoa(u.Retries), "", "", ""})
	}
	counts = append(counts, []string{"TOTAL", strconv.Itoa(r.OK), strconv.Itoa(r.Failed), strconv.Itoa(r.RateLimited),
		strconv.Itoa(r.Retries), money.Format(r.CostUSD), rate(r.RequestsPerSecond), ""})
	usage = append(usage, []string{"TOTAL", count(r.InputTokens), count(r.OutputTokens), "", ""})
	writeTable(w, counts)
	fmt.Fprintln(w)
	writeTable(w, usage)
}

// writeTable writes rows with the first column left-aligned, the others right-aligned (numbers),
// two spaces apart, without trailing blanks. (text/tabwriter's AlignRight would pad the first
// column on the left too.)
func writeTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				b.WriteString(cell + pad)
				continue
			}
			b.WriteString("  " + pad + cell)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func renderNarrow(w io.Writer, r Report) {
	for _, m := range r.Models {
		fmt.Fprintf(w, "%s/%s\n", m.Provider, m.Model)
		fmt.Fprintf(w, "  %d ok, %d failed, %d 429s, %d retries\n", m.OK, m.Failed, m.RateLimited, m.Retries)
		fmt.Fprintf(w, "  cost %s, tokens %s in, %s out\n", money.Format(m.CostUSD), count(m.InputTokens), count(m.OutputTokens))
		fmt.Fprintf(w, "  latency %s mean, %s p95\n", latency(m.LatencyMeanMS), latency(m.LatencyP95MS))
		fmt.Fprintf(w, "  %s req/s, %s of ceiling\n", rate(m.RequestsPerSecond), share(m))
	}
	if u := r.Unfinished; u != nil {
		fmt.Fprintf(w, "(unfinished)\n  %d retries\n", u.Retries)
	}
	fmt.Fprintf(w, "TOTAL\n  %d ok, %d failed, %d 429s, %d retries\n", r.OK, r.Failed, r.RateLimited, r.Retries)
	fmt.Fprintf(w, "  cost %s, tokens %s in, %s out\n", money.Format(r.CostUSD), count(r.InputTokens), count(r.OutputTokens))
	fmt.Fprintf(w, "  %s req/s\n", rate(r.RequestsPerSecond))
}

func maxLineWidth(s string) int {
	width := 0
	for line := range strings.SplitSeq(s, "\n") {
		width = max(width, utf8.RuneCountInString(strings.TrimRight(line, " ")))
	}
	return width
}

// share renders a lane's share of its ceiling, "–" when it is not known (see LaneReport).
func share(m LaneReport) string {
	if m.CeilingShare == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100**m.CeilingShare)
}

func rate(perSecond float64) string { return strconv.FormatFloat(perSecond, 'f', 2, 64) }

// count writes n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s { // token counts are never negative
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func latency(msec float64) string {
	switch {
	case msec == 0:
		return "–"
	case msec < 1000:
		return fmt.Sprintf("%.0fms", msec)
	}
	return fmt.Sprintf("%.2fs", msec/1000)
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}
