// Package batchapi is llmbatch's client for the providers' batch APIs: OpenAI (Files upload with
// purpose=batch + /v1/batches, output and error files), Anthropic (/v1/messages/batches, results
// JSONL) and Gemini (models/{model}:batchGenerateContent with inline requests, a long-running
// operation polled until done). One small interface, Client, hides the three dialects: submit a
// chunk (streamed: the upload is written while it is sent, never held whole), get a job's state,
// stream its results as neutral responses or errors keyed by custom_id, cancel it, and list the
// jobs of an llmbatch job by tag so a job created just before a crash is found again.
//
// The requests and answers are exactly those of the realtime adapters (pkg/provider/...): each
// line's body is the adapter's encoding and each answer goes through the adapter's decoder.
// Chunking within the per-job caps (Planner), the enqueued-token limit (Gate) and polling with
// backoff (Wait) live here too; the journal that makes submission crash-safe is pkg/batchjournal.
package batchapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/adapters"
)

// Item is one request of a chunk. CustomID must be unique within the chunk and, for Anthropic, match
// ^[a-zA-Z0-9_-]{1,64}$ (use ChunkCustomID).
type Item struct {
	CustomID string
	Request  *provider.Request
}

// Tag names the llmbatch job and chunk a provider job belongs to. It travels as OpenAI batch
// metadata and in the Gemini display name; Anthropic batches cannot carry one (see Filter).
type Tag struct {
	Job   string // stable for the llmbatch job (the journal keeps it)
	Chunk string // unique within the job
}

// Chunk is what one provider job submits. Items is called once per Submit and must yield the same
// items each time it is called; every item must use Model.
type Chunk struct {
	Tag   Tag
	Model string
	Items func(yield func(Item) error) error
}

// Hooks observe a submission between its steps, so a journal records each one before the next
// happens. A hook's error aborts the submission.
type Hooks struct {
	// Uploaded is called with the input file id once the upload succeeded and before the job is
	// created (OpenAI only; the other dialects upload and create in one request).
	Uploaded func(fileID string) error
}

// Status is a provider job's state, normalised.
type Status string

// Job states. Validating, InProgress, Finalizing and Cancelling are live; the rest have ended.
const (
	Validating Status = "validating"
	InProgress Status = "in_progress"
	Finalizing Status = "finalizing"
	Cancelling Status = "cancelling"
	Completed  Status = "completed"
	Failed     Status = "failed"
	Expired    Status = "expired"
	Cancelled  Status = "cancelled"
)

// Ended reports whether the job will change no more (its results, if any, can be downloaded).
func (s Status) Ended() bool {
	return s == Completed || s == Failed || s == Expired || s == Cancelled
}

// Job is a provider batch job as last seen.
type Job struct {
	ID        string
	Status    Status
	Tag       Tag       // empty when the provider cannot carry one (Anthropic)
	Model     string    // Gemini: the model of the job; else empty
	CreatedAt time.Time // as the provider reports it
	// Total, Done and Failed count lines: all, finished so far (answered or errored), errored.
	Total, Done, Failed int
	// Failure is the provider's reason for a Failed job (e.g. token_limit_exceeded).
	Failure string
	// FailureCode is the provider's code for Failure, when it gives one.
	FailureCode string

	outputFile, errorFile, resultsURL string
}

// Outcome is what became of one line.
type Outcome string

// Line outcomes.
const (
	LineOK       Outcome = "ok"       // answered: Response is set
	LineErrored  Outcome = "errored"  // the provider answered with an error: Err is set
	LineExpired  Outcome = "expired"  // not processed within the job's completion window
	LineCanceled Outcome = "canceled" // not processed because the job was cancelled
)

// Result is one line of a job's results.
type Result struct {
	CustomID string
	Outcome  Outcome
	Response *provider.Response // LineOK
	Err      *provider.APIError // the other outcomes (a synthetic error for expired and canceled lines)
	// Retryable says whether sending the same request again may succeed (server errors, rate
	// limits, expired and canceled lines); false for errors in the request itself.
	Retryable bool
}

// Filter selects jobs on a provider's list.
type Filter struct {
	Job   string    // tag's Job; matched where the provider carries tags
	Since time.Time // jobs created before it are not listed (and listing stops at them)
}

// Client is one provider's batch API. Implementations are safe for concurrent use and make one
// HTTP attempt per call (retries and pacing belong to the caller, see Wait); errors are or wrap
// *provider.APIError and keep RetryAfter.
type Client interface {
	// Dialect is "openai", "anthropic" or "gemini".
	Dialect() string
	// Encode returns the bytes item adds to the upload (its JSONL line or array element, with the
	// separator): what Planner counts against max_bytes.
	Encode(item Item) ([]byte, error)
	// Submit uploads the chunk's items as they are produced and creates the job. On a creation
	// that the provider accepted and then failed (OpenAI token_limit_exceeded), the Job has
	// Status Failed and a nil error.
	Submit(ctx context.Context, ch *Chunk, hooks Hooks) (*Job, error)
	// Get returns the job's current state.
	Get(ctx context.Context, id string) (*Job, error)
	// Results streams an ended job's lines to fn, in the provider's order; fn's error stops it.
	Results(ctx context.Context, job *Job, fn func(Result) error) error
	// Cancel asks the provider to cancel the job and returns its state (often still cancelling).
	Cancel(ctx context.Context, id string) (*Job, error)
	// List returns the provider's jobs matching f, newest first. Anthropic batches carry no tag:
	// its List returns every batch created since f.Since, with an empty Tag.
	List(ctx context.Context, f Filter) ([]*Job, error)
}

// Options configures New.
type Options struct {
	Client *http.Client        // the provider's shared client; required
	Getenv func(string) string // reads the API key variable; os.Getenv when nil
	Now    func() time.Time    // stamps rate limits; time.Now when nil
}

// New returns the batch client of provider p, by its dialect (p.Dialect()). A `type: sim` provider
// without base_url gets the simulator's placeholder base URL, reached through o.Client's transport.
func New(p *config.Provider, o Options) (Client, error) {
	key := p.APIKey(o.Getenv)
	if p.NeedsKey() && key == "" {
		return nil, fmt.Errorf("provider %q: environment variable %s is not set: %w", p.Name, p.APIKeyEnv, adapters.ErrMissingKey)
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	base := p.BaseURL
	dialect := p.Dialect()
	if base == "" && p.Type == config.TypeSim {
		base = map[string]string{config.TypeOpenAI: adapters.SimBaseURLOpenAI,
			config.TypeAnthropic: adapters.SimBaseURLAnthropic, config.TypeGemini: adapters.SimBaseURLGemini}[dialect]
	}
	base, err := provider.NormalizeBaseURL(base, "")
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", p.Name, err)
	}
	h := httpDoer{provider: p.Name, client: o.Client, now: o.Now, secret: key, header: provider.NewHeader(p.Headers)}
	switch dialect {
	case config.TypeOpenAI:
		if key != "" {
			h.header.Set("Authorization", "Bearer "+key)
		}
		return &openAIClient{h: h, base: base}, nil
	case config.TypeAnthropic:
		return newAnthropic(h, base, key, p)
	case config.TypeGemini:
		if key != "" {
			h.header.Set("x-goog-api-key", key)
		}
		return &geminiClient{h: h, base: base}, nil
	}
	return nil, fmt.Errorf("provider %q: no batch API for dialect %q", p.Name, dialect)
}

// ChunkCustomID is the custom_id of the i-th item of a chunk: short, ordered, and valid in every
// dialect. The journal keeps the prompt ids in chunk order, so i maps back to the prompt.
func ChunkCustomID(i int) string { return fmt.Sprintf("r%d", i) }

// Cost is the batch price of a response of usage tokens on model m at the given discount:
// tokens.Cost × (1 − discount), rounded to 1e-10 USD so sums print without float noise.
func Cost(m *config.Model, in, out int, discount float64) float64 {
	c := (float64(in)*m.InputPerMTok + float64(out)*m.OutputPerMTok) / 1e6 * (1 - discount)
	return math.Round(c*1e10) / 1e10
}

// retryableStatus says whether an HTTP status of a failed line is worth sending again.
func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// syntheticError is the *provider.APIError standing for an expired or canceled line.
func syntheticError(provName, model string, o Outcome) *provider.APIError {
	msg := "the request was not processed before the batch job's completion window ended"
	if o == LineCanceled {
		msg = "the request was not processed because the batch job was cancelled"
	}
	return &provider.APIError{Provider: provName, Model: model, Type: "batch_" + string(o), Message: msg}
}
