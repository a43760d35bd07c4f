// Package metrics exposes a run's live figures in the Prometheus text format
// (prometheus/client_golang): requests by lane, status and error class, tokens, cost, 429s, request
// latency, admission wait, requests in flight, breaker state and the rate limits in force. It
// implements batch.Observer; Handler serves /metrics.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmbatch/llmbatch/pkg/batch"
)

// Metrics is one run's registry. The zero value is not usable: call New.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	tokens      *prometheus.CounterVec
	cost        *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	wait        *prometheus.HistogramVec

	mu    sync.Mutex
	lanes func() []batch.LaneState
}

var laneLabels = []string{"provider", "model"}

// New builds the registry with every llmbatch_* metric and Go's process and runtime collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmbatch_requests_total",
		Help: "Requests sent, by lane, status (ok or error) and error class (none when ok)."},
		[]string{"provider", "model", "status", "class"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmbatch_tokens_total",
		Help: "Tokens of the ok answers, by lane and direction (input or output)."},
		[]string{"provider", "model", "direction"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmbatch_cost_usd_total",
		Help: "Cost of the ok answers in US dollars, by lane."}, laneLabels)
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmbatch_rate_limited_total",
		Help: "Requests answered 429 (rate limited), by lane."}, laneLabels)
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llmbatch_request_duration_seconds",
		Help: "Time from sending a request to its answer or failure, by lane.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}, laneLabels)
	m.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llmbatch_limiter_wait_seconds",
		Help:    "Time a request waited for admission on its lane (rate limit, budget, concurrency, breaker).",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, laneLabels)
	m.reg.MustRegister(m.requests, m.tokens, m.cost, m.rateLimited, m.latency, m.wait, laneCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Attempt implements batch.Observer.
func (m *Metrics) Attempt(a batch.AttemptEvent) {
	status, class := "ok", "none"
	if a.Class != "" {
		status, class = "error", a.Class
	}
	m.requests.WithLabelValues(a.Provider, a.Model, status, class).Inc()
	m.latency.WithLabelValues(a.Provider, a.Model).Observe(a.Latency.Seconds())
	if a.Class == "rate_limit" {
		m.rateLimited.WithLabelValues(a.Provider, a.Model).Inc()
	}
	if a.Class == "" {
		m.tokens.WithLabelValues(a.Provider, a.Model, "input").Add(float64(a.InputTokens))
		m.tokens.WithLabelValues(a.Provider, a.Model, "output").Add(float64(a.OutputTokens))
		m.cost.WithLabelValues(a.Provider, a.Model).Add(a.CostUSD)
	}
}

// Waited implements batch.Observer.
func (m *Metrics) Waited(provider, model string, d time.Duration) {
	m.wait.WithLabelValues(provider, model).Observe(d.Seconds())
}

// Lanes implements batch.Observer.
func (m *Metrics) Lanes(fn func() []batch.LaneState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lanes = fn
}

// laneCollector reads the lanes' live state at scrape time.
type laneCollector struct{ m *Metrics }

var (
	inFlightDesc = prometheus.NewDesc("llmbatch_requests_in_flight", "Requests sent and not yet answered, by lane.", laneLabels, nil)
	breakerDesc  = prometheus.NewDesc("llmbatch_breaker_state", "The lane's circuit breaker: 0 closed, 1 half-open, 2 open.", laneLabels, nil)
	rpmDesc      = prometheus.NewDesc("llmbatch_limit_requests_per_minute", "The lane's request limit in force, configured or learned from the provider (0 = unknown).", laneLabels, nil)
	tpmDesc      = prometheus.NewDesc("llmbatch_limit_tokens_per_minute", "The lane's token limit in force, configured or learned from the provider (0 = unknown).", laneLabels, nil)
)

func (c laneCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{inFlightDesc, breakerDesc, rpmDesc, tpmDesc} {
		ch <- d
	}
}

func (c laneCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	fn := c.m.lanes
	c.m.mu.Unlock()
	if fn == nil {
		return
	}
	for _, l := range fn() {
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(l.InFlight), l.Provider, l.Model)
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, float64(l.Breaker), l.Provider, l.Model)
		ch <- prometheus.MustNewConstMetric(rpmDesc, prometheus.GaugeValue, float64(l.RPM), l.Provider, l.Model)
		ch <- prometheus.MustNewConstMetric(tpmDesc, prometheus.GaugeValue, float64(l.TPM), l.Provider, l.Model)
	}
}
