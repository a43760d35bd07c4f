// Package results writes result lines (one JSON object per prompt, DESIGN §3), scans an existing
// output to resume from it, repairs a torn last line, and compacts superseded lines.
package results

import (
	"encoding/json"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// Status values of a result line.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// Result is one line of the output file.
type Result struct {
	CustomID     string          `json:"custom_id"`
	Status       string          `json:"status"`
	Provider     string          `json:"provider,omitempty"`
	Model        string          `json:"model,omitempty"`
	Content      string          `json:"content,omitempty"`
	ToolCalls    json.RawMessage `json:"tool_calls,omitempty"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Usage        *provider.Usage `json:"usage,omitempty"`
	CostUSD      float64         `json:"cost_usd,omitempty"`
	Error        *ErrorInfo      `json:"error,omitempty"`
	Attempts     int             `json:"attempts"`
	AttemptLog   []Attempt       `json:"attempt_log,omitempty"` // only with -v
	LatencyMS    int64           `json:"latency_ms,omitempty"`
	RequestHash  string          `json:"request_hash"`
	RequestID    string          `json:"request_id,omitempty"` // the provider's id for the call
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	// StartedAt is when the prompt's first request was sent (RFC 3339 with milliseconds, UTC);
	// FinishedAt when its result was decided. Reports place each result in time by them.
	StartedAt  string `json:"started_at,omitempty"`
	FinishedAt string `json:"finished_at,omitempty"`
	// Via says how the answer was obtained: "batch" for answers of provider batch jobs, "cache"
	// for the response cache's; empty = realtime.
	Via     string `json:"via,omitempty"`
	BatchID string `json:"batch_id,omitempty"` // the provider batch job that answered
	// Cached marks an answer served from the response cache: nothing was sent, CostUSD is 0 and
	// CachedCostUSD is what the answer cost when it was bought.
	Cached        bool    `json:"cached,omitempty"`
	CachedCostUSD float64 `json:"cached_cost_usd,omitempty"`
}

// TimeLayout is the RFC 3339 layout with milliseconds that result lines use for timestamps.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Timestamp formats t for a result line (UTC, RFC 3339 with milliseconds); "" for the zero time.
func Timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// ErrorInfo says why a prompt failed.
type ErrorInfo struct {
	Type       string `json:"type"` // the classifier's type: rate_limit, bad_request, context_length, ...
	Message    string `json:"message"`
	StatusCode int    `json:"status_code,omitempty"`
}

// Attempt is one try of a prompt, for the attempt log.
type Attempt struct {
	At        string `json:"at"` // RFC 3339 with milliseconds
	Provider  string `json:"provider"`
	Model     string `json:"model"`
	ErrorType string `json:"error_type,omitempty"` // empty on success
	WaitMS    int64  `json:"wait_ms,omitempty"`    // backoff waited after this attempt
}
