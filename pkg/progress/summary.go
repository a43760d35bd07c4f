package progress

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"
	"text/tabwriter"
	"time"
)

// Summary collects per-lane statistics over a run for the final table (Render) and for --json and
// logs (JSON). Memory is bounded per lane whatever the number of requests. It is safe for
// concurrent use; the engine calls Add from its writer goroutine, once per finished prompt.
type Summary struct {
	mu    sync.Mutex
	now   func() time.Time
	start time.Time
	end   time.Time // zero until Finish
	lanes map[laneKey]*laneStats
	ceil  map[laneKey]float64
}

type laneKey struct{ provider, model string }

type laneStats struct {
	ok, failed    int
	input, output int64
	cost          float64
	rateLimited   int
	retries       int
	latency       latencyHist // of successful prompts only: a failure's time says little about the lane
}

// NewSummary returns an empty summary whose wall time starts now (now is time.Now when nil).
func NewSummary(now func() time.Time) *Summary {
	if now == nil {
		now = time.Now
	}
	return &Summary{now: now, start: now(), lanes: make(map[laneKey]*laneStats), ceil: make(map[laneKey]float64)}
}

// Add records the outcome of one finished prompt under its final (provider, model).
func (s *Summary) Add(o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := laneKey{o.Provider, o.Model}
	st := s.lanes[k]
	if st == nil {
		st = &laneStats{}
		s.lanes[k] = st
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

// SetCeiling records a lane's theoretical ceiling in requests per second (min(RPM, TPM/tokens per
// request)/60; see ratelimit.Limits.Ceiling), so the report can show the share of it the run
// achieved. A ceiling of 0 means unknown.
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

// Report is the summary of a run as JSON, for --json output and logs.
type Report struct {
	WallSeconds       float64      `json:"wall_seconds"`
	Requests          int          `json:"requests"` // finished prompts: ok + failed
	OK                int          `json:"ok"`
	Failed            int          `json:"failed"`
	InputTokens       int64        `json:"input_tokens"`
	OutputTokens      int64        `json:"output_tokens"`
	CostUSD           float64      `json:"cost_usd"`
	RateLimited       int          `json:"rate_limited"` // 429 answers received
	Retries           int          `json:"retries"`
	RequestsPerSecond float64      `json:"requests_per_second"`
	Models            []LaneReport `json:"models"` // sorted by provider, then model
}

// LaneReport is one (provider, model) of a Report.
type LaneReport struct {
	Provider          string  `json:"provider"`
	Model             string  `json:"model"`
	Requests          int     `json:"requests"`
	OK                int     `json:"ok"`
	Failed            int     `json:"failed"`
	InputTokens       int64   `json:"input_tokens"`
	OutputTokens      int64   `json:"output_tokens"`
	CostUSD           float64 `json:"cost_usd"`
	RateLimited       int     `json:"rate_limited"`
	Retries           int     `json:"retries"`
	LatencyMeanMS     float64 `json:"latency_mean_ms"` // successful prompts only
	LatencyP95MS      float64 `json:"latency_p95_ms"`
	RequestsPerSecond float64 `json:"requests_per_second"` // finished prompts over the run's wall time
	// CeilingRPS is the lane's ceiling from SetCeiling and CeilingShare the achieved share of it
	// (RequestsPerSecond / CeilingRPS); both are omitted when the ceiling is unknown.
	CeilingRPS   float64 `json:"ceiling_rps,omitempty"`
	CeilingShare float64 `json:"ceiling_share,omitempty"`
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
	perSecond := func(n int) float64 {
		if wall <= 0 {
			return 0
		}
		return float64(n) / wall
	}
	r := Report{WallSeconds: wall, Models: make([]LaneReport, 0, len(s.lanes))}
	for k, st := range s.lanes {
		lr := LaneReport{
			Provider:          k.provider,
			Model:             k.model,
			Requests:          st.ok + st.failed,
			OK:                st.ok,
			Failed:            st.failed,
			InputTokens:       st.input,
			OutputTokens:      st.output,
			CostUSD:           st.cost,
			RateLimited:       st.rateLimited,
			Retries:           st.retries,
			LatencyMeanMS:     ms(st.latency.mean()),
			LatencyP95MS:      ms(st.latency.quantile(0.95)),
			RequestsPerSecond: perSecond(st.ok + st.failed),
		}
		if c := s.ceil[k]; c > 0 {
			lr.CeilingRPS = c
			lr.CeilingShare = lr.RequestsPerSecond / c
		}
		r.Models = append(r.Models, lr)
		r.Requests += lr.Requests
		r.OK += lr.OK
		r.Failed += lr.Failed
		r.InputTokens += lr.InputTokens
		r.OutputTokens += lr.OutputTokens
		r.CostUSD += lr.CostUSD
		r.RateLimited += lr.RateLimited
		r.Retries += lr.Retries
	}
	r.RequestsPerSecond = perSecond(r.Requests)
	slices.SortFunc(r.Models, func(a, b LaneReport) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Model, b.Model))
	})
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Render writes the summary as an aligned table, one row per (provider, model), a total row and the
// wall time. It returns the first write error.
func (s *Summary) Render(w io.Writer) error {
	r := s.JSON()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tMODEL\tOK\tFAILED\tIN TOKENS\tOUT TOKENS\tCOST\t429s\tRETRIES\tMEAN\tP95\tREQ/S\tOF CEILING")
	for _, m := range r.Models {
		share := "-"
		if m.CeilingRPS > 0 {
			share = fmt.Sprintf("%.1f%%", 100*m.CeilingShare)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%.2f\t%s\n",
			m.Provider, m.Model, m.OK, m.Failed, m.InputTokens, m.OutputTokens, usd(m.CostUSD),
			m.RateLimited, m.Retries, latency(m.LatencyMeanMS), latency(m.LatencyP95MS), m.RequestsPerSecond, share)
	}
	fmt.Fprintf(tw, "TOTAL\t\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t\t\t%.2f\n",
		r.OK, r.Failed, r.InputTokens, r.OutputTokens, usd(r.CostUSD), r.RateLimited, r.Retries, r.RequestsPerSecond)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "wall time %s\n", seconds(r.WallSeconds))
	return err
}

func usd(v float64) string {
	if v != 0 && v < 0.01 {
		return fmt.Sprintf("$%.6f", v)
	}
	return fmt.Sprintf("$%.4f", v)
}

func latency(msec float64) string {
	switch {
	case msec == 0:
		return "-"
	case msec < 1000:
		return fmt.Sprintf("%.0fms", msec)
	}
	return fmt.Sprintf("%.2fs", msec/1000)
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}
