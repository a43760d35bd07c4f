package batchapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/anthropic"
)

// anthropicClient speaks the Anthropic Message Batches API.
type anthropicClient struct {
	h    httpDoer
	base string // the host; endpoints are under /v1/messages/batches
}

func newAnthropic(h httpDoer, base, key string, p *config.Provider) (*anthropicClient, error) {
	h.header.Set("anthropic-version", anthropic.APIVersion)
	for k, v := range p.Headers {
		h.header.Set(k, v)
	}
	if key != "" {
		h.header.Set("x-api-key", key)
	}
	h.parse = anthropic.ParseError
	return &anthropicClient{h: h, base: base + "/v1/messages/batches"}, nil
}

func (c *anthropicClient) Dialect() string { return "anthropic" }

// Encode returns the request as an element of the creation body's requests array, comma first.
func (c *anthropicClient) Encode(it Item) ([]byte, error) {
	params, err := anthropic.EncodeParams(it.Request)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.h.provider, it.CustomID, err)
	}
	b := make([]byte, 0, len(params)+40+len(it.CustomID))
	b = append(b, `,{"custom_id":`...)
	b = strconv.AppendQuote(b, it.CustomID)
	b = append(b, `,"params":`...)
	b = append(b, params...)
	return append(b, '}'), nil
}

func (c *anthropicClient) Submit(ctx context.Context, ch *Chunk, _ Hooks) (*Job, error) {
	resp, err := c.h.stream(ctx, http.MethodPost, c.base, "application/json", func(w io.Writer) error {
		return writeArray(w, `{"requests":[`, "]}", ch, c.Encode)
	})
	if err != nil {
		return nil, fmt.Errorf("create batch for %s: %w", ch.Tag.Chunk, err)
	}
	var b anBatch
	if err := c.h.decode(resp, &b); err != nil {
		return nil, fmt.Errorf("create batch for %s: %w", ch.Tag.Chunk, err)
	}
	return b.job(), nil
}

func (c *anthropicClient) Get(ctx context.Context, id string) (*Job, error) {
	return fetchJob[anBatch](ctx, &c.h, http.MethodGet, c.base+"/"+url.PathEscape(id))
}

func (c *anthropicClient) Cancel(ctx context.Context, id string) (*Job, error) {
	return fetchJob[anBatch](ctx, &c.h, http.MethodPost, c.base+"/"+url.PathEscape(id)+"/cancel")
}

func (c *anthropicClient) List(ctx context.Context, f Filter) ([]*Job, error) {
	// Anthropic batches carry no metadata: every job since f.Since is a candidate.
	return listJobs[anBatch](ctx, &c.h, c.base+"?limit=100", "after_id", f, func(*Job) bool { return true })
}

func (c *anthropicClient) Results(ctx context.Context, job *Job, fn func(Result) error) error {
	u := job.resultsURL
	if u == "" {
		u = c.base + "/" + url.PathEscape(job.ID) + "/results"
	}
	resp, err := c.h.do(ctx, http.MethodGet, u, "", nil)
	if err != nil {
		return fmt.Errorf("results of %s: %w", job.ID, err)
	}
	return c.h.readLines(resp, c.parseLine, fn)
}

func (c *anthropicClient) parseLine(line []byte) (Result, error) {
	var l struct {
		CustomID string `json:"custom_id"`
		Result   struct {
			Type    string          `json:"type"`
			Message json.RawMessage `json:"message"`
			Error   json.RawMessage `json:"error"`
		} `json:"result"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return Result{}, &provider.APIError{Provider: c.h.provider, Malformed: true, Err: fmt.Errorf("decode result line: %w", err)}
	}
	r := Result{CustomID: l.CustomID}
	switch l.Result.Type {
	case "succeeded":
		resp, err := anthropic.DecodeMessage(l.Result.Message, "")
		if err != nil {
			r.Outcome, r.Retryable = LineErrored, true
			r.Err = &provider.APIError{Provider: c.h.provider, Malformed: true, Err: err}
			return r, nil
		}
		r.Outcome, r.Response = LineOK, resp
	case "errored":
		info := anthropic.ParseError(0, l.Result.Error)
		r.Outcome = LineErrored
		// Errors in the request itself (invalid_request_error and friends) fail again; the
		// server's own (api_error, overloaded_error, rate_limit_error) may not.
		switch info.Type {
		case "api_error", "overloaded_error", "rate_limit_error", "timeout_error":
			r.Retryable = true
		}
		r.Err = &provider.APIError{Provider: c.h.provider, Type: info.Type, Code: info.Code, Message: info.Message}
	case "expired":
		r.Outcome, r.Retryable, r.Err = LineExpired, true, syntheticError(c.h.provider, "", LineExpired)
	case "canceled":
		r.Outcome, r.Retryable, r.Err = LineCanceled, true, syntheticError(c.h.provider, "", LineCanceled)
	default:
		r.Outcome, r.Retryable = LineErrored, true
		r.Err = &provider.APIError{Provider: c.h.provider, Type: "batch_error", Message: "unknown result type " + strconv.Quote(l.Result.Type)}
	}
	return r, nil
}

// anBatch is the message_batch object.
type anBatch struct {
	ID               string    `json:"id"`
	ProcessingStatus string    `json:"processing_status"`
	CreatedAt        time.Time `json:"created_at"`
	ResultsURL       string    `json:"results_url"`
	CancelInitiated  *string   `json:"cancel_initiated_at"`
	RequestCounts    struct {
		Processing int `json:"processing"`
		Succeeded  int `json:"succeeded"`
		Errored    int `json:"errored"`
		Canceled   int `json:"canceled"`
		Expired    int `json:"expired"`
	} `json:"request_counts"`
}

func (b *anBatch) job() *Job {
	rc := b.RequestCounts
	total := rc.Processing + rc.Succeeded + rc.Errored + rc.Canceled + rc.Expired
	j := &Job{ID: b.ID, CreatedAt: b.CreatedAt, Total: total, Done: total - rc.Processing,
		Failed: rc.Errored + rc.Canceled + rc.Expired, resultsURL: b.ResultsURL}
	switch {
	case b.ProcessingStatus == "ended" && b.CancelInitiated != nil && rc.Canceled > 0:
		j.Status = Cancelled
	case b.ProcessingStatus == "ended" && rc.Expired > 0 && rc.Succeeded+rc.Errored+rc.Canceled == 0:
		j.Status = Expired
	case b.ProcessingStatus == "ended":
		j.Status = Completed
	case b.ProcessingStatus == "canceling":
		j.Status = Cancelling
	default:
		j.Status = InProgress
	}
	return j
}
