package batchapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/gemini"
)

// geminiClient speaks Gemini Batch Mode with inline requests.
type geminiClient struct {
	h    httpDoer
	base string // includes /v1beta
}

// displayPrefix starts the display name that carries a Gemini batch's tag: llmbatch/JOB/CHUNK.
const displayPrefix = "llmbatch/"

func (c *geminiClient) Dialect() string { return "gemini" }

// Encode returns the request as an element of the inline requests array, comma first.
func (c *geminiClient) Encode(it Item) ([]byte, error) {
	body, err := gemini.EncodeBody(it.Request)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.h.provider, it.CustomID, err)
	}
	b := make([]byte, 0, len(body)+48+len(it.CustomID))
	b = append(b, `,{"request":`...)
	b = append(b, body...)
	b = append(b, `,"metadata":{"key":`...)
	b = strconv.AppendQuote(b, it.CustomID)
	return append(b, "}}"...), nil
}

// modelPath is the resource path of a model ("models/x" for a bare name).
func modelPath(model string) string {
	if !strings.Contains(model, "/") {
		model = "models/" + model
	}
	segs := strings.Split(model, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (c *geminiClient) Submit(ctx context.Context, ch *Chunk, _ Hooks) (*Job, error) {
	name, err := json.Marshal(displayPrefix + ch.Tag.Job + "/" + ch.Tag.Chunk)
	if err != nil {
		return nil, err
	}
	resp, err := c.h.stream(ctx, http.MethodPost, c.base+"/"+modelPath(ch.Model)+":batchGenerateContent", "application/json", func(w io.Writer) error {
		return writeArray(w, `{"batch":{"displayName":`+string(name)+`,"inputConfig":{"requests":{"requests":[`, "]}}}}", ch, c.Encode)
	})
	if err != nil {
		return nil, fmt.Errorf("create batch for %s: %w", ch.Tag.Chunk, err)
	}
	var op gemOperation
	if err := c.h.decode(resp, &op); err != nil {
		return nil, fmt.Errorf("create batch for %s: %w", ch.Tag.Chunk, err)
	}
	return op.job(), nil
}

// Get reads the operation's metadata only; Results reads the inlined responses as a stream.
func (c *geminiClient) Get(ctx context.Context, id string) (*Job, error) {
	resp, err := c.h.do(ctx, http.MethodGet, c.base+"/"+id, "", nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var op gemOperation
	// Walk the top-level keys, skipping "response" (possibly megabytes of answers) unread into memory.
	if err := walkObject(json.NewDecoder(bufio.NewReader(resp.Body)), func(key string, dec *json.Decoder) error {
		switch key {
		case "name":
			return dec.Decode(&op.Name)
		case "done":
			return dec.Decode(&op.Done)
		case "metadata":
			return dec.Decode(&op.Metadata)
		case "error":
			return dec.Decode(&op.Error)
		}
		return skipValue(dec)
	}); err != nil {
		return nil, &provider.APIError{Provider: c.h.provider, Malformed: true, Err: fmt.Errorf("decode operation: %w", err)}
	}
	return op.job(), nil
}

func (c *geminiClient) Cancel(ctx context.Context, id string) (*Job, error) {
	if err := c.h.sendJSON(ctx, http.MethodPost, c.base+"/"+id+":cancel", nil, nil); err != nil {
		return nil, err
	}
	return c.Get(ctx, id)
}

func (c *geminiClient) List(ctx context.Context, f Filter) ([]*Job, error) {
	var out []*Job
	token := ""
	for {
		u := c.base + "/batches?pageSize=100"
		if token != "" {
			u += "&pageToken=" + url.QueryEscape(token)
		}
		var page struct {
			Operations    []gemOperation `json:"operations"`
			NextPageToken string         `json:"nextPageToken"`
		}
		if err := c.h.getJSON(ctx, u, &page); err != nil {
			return nil, err
		}
		for i := range page.Operations {
			j := page.Operations[i].job()
			if j.CreatedAt.Before(f.Since) {
				return out, nil
			}
			if f.Job == "" || j.Tag.Job == f.Job {
				out = append(out, j)
			}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// Results streams response.inlinedResponses.inlinedResponses of the operation, one element at a time.
func (c *geminiClient) Results(ctx context.Context, job *Job, fn func(Result) error) error {
	resp, err := c.h.do(ctx, http.MethodGet, c.base+"/"+job.ID, "", nil)
	if err != nil {
		return fmt.Errorf("results of %s: %w", job.ID, err)
	}
	defer func() { _ = resp.Body.Close() }()
	dec := json.NewDecoder(bufio.NewReaderSize(resp.Body, 256<<10))
	i := 0
	var ferr error
	err = walkObject(dec, func(key string, dec *json.Decoder) error {
		if key != "response" {
			return skipValue(dec)
		}
		return walkObject(dec, func(key string, dec *json.Decoder) error {
			if key != "inlinedResponses" {
				return skipValue(dec)
			}
			return walkObject(dec, func(key string, dec *json.Decoder) error {
				if key != "inlinedResponses" {
					return skipValue(dec)
				}
				if _, err := dec.Token(); err != nil { // [
					return err
				}
				for dec.More() {
					var el gemInlined
					if err := dec.Decode(&el); err != nil {
						return err
					}
					r := c.result(&el, i, job.Model)
					i++
					if ferr = fn(r); ferr != nil {
						return ferr
					}
				}
				_, err := dec.Token() // ]
				return err
			})
		})
	})
	if ferr != nil {
		return ferr
	}
	if err != nil {
		return &provider.APIError{Provider: c.h.provider, Malformed: true, Err: fmt.Errorf("results of %s: %w", job.ID, err)}
	}
	return nil
}

type gemInlined struct {
	Response json.RawMessage `json:"response"`
	Error    *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Metadata struct {
		Key string `json:"key"`
	} `json:"metadata"`
}

// result turns the i-th inlined response into a Result; without a metadata key (the API may drop
// it) the custom_id is the request's position, which is how Encode's keys are made by ChunkCustomID.
func (c *geminiClient) result(el *gemInlined, i int, model string) Result {
	r := Result{CustomID: el.Metadata.Key}
	if r.CustomID == "" {
		r.CustomID = ChunkCustomID(i)
	}
	if el.Error != nil {
		switch el.Error.Code {
		case 1: // CANCELLED
			r.Outcome, r.Retryable, r.Err = LineCanceled, true, syntheticError(c.h.provider, model, LineCanceled)
		case 4: // DEADLINE_EXCEEDED
			r.Outcome, r.Retryable, r.Err = LineExpired, true, syntheticError(c.h.provider, model, LineExpired)
		default:
			// google.rpc codes: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 7 PERMISSION_DENIED, 9, 11 are the
			// request's own fault; 8 RESOURCE_EXHAUSTED, 10, 13 INTERNAL, 14 UNAVAILABLE are not.
			r.Outcome = LineErrored
			r.Retryable = el.Error.Code == 8 || el.Error.Code == 10 || el.Error.Code == 13 || el.Error.Code == 14
			r.Err = &provider.APIError{Provider: c.h.provider, Model: model, Type: rpcCode(el.Error.Code), Message: el.Error.Message}
		}
		return r
	}
	resp, err := gemini.DecodeBody(el.Response, model)
	if err != nil {
		r.Outcome, r.Retryable = LineErrored, true
		r.Err = &provider.APIError{Provider: c.h.provider, Model: model, Malformed: true, Err: err}
		return r
	}
	r.Outcome, r.Response = LineOK, resp
	return r
}

func rpcCode(code int) string {
	names := map[int]string{1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
		7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE",
		13: "INTERNAL", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED"}
	if n, ok := names[code]; ok {
		return n
	}
	return "CODE_" + strconv.Itoa(code)
}

// gemOperation is the long-running operation of a batch (its response read separately).
type gemOperation struct {
	Name     string `json:"name"`
	Done     bool   `json:"done"`
	Metadata struct {
		Model       string    `json:"model"`
		DisplayName string    `json:"displayName"`
		State       string    `json:"state"`
		CreateTime  time.Time `json:"createTime"`
		BatchStats  struct {
			RequestCount           string `json:"requestCount"`
			PendingRequestCount    string `json:"pendingRequestCount"`
			SuccessfulRequestCount string `json:"successfulRequestCount"`
			FailedRequestCount     string `json:"failedRequestCount"`
		} `json:"batchStats"`
	} `json:"metadata"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (op *gemOperation) job() *Job {
	m := &op.Metadata
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	total, pending := atoi(m.BatchStats.RequestCount), atoi(m.BatchStats.PendingRequestCount)
	j := &Job{ID: op.Name, CreatedAt: m.CreateTime, Model: strings.TrimPrefix(m.Model, "models/"),
		Total: total, Done: total - pending, Failed: atoi(m.BatchStats.FailedRequestCount)}
	if rest, ok := strings.CutPrefix(m.DisplayName, displayPrefix); ok {
		j.Tag.Job, j.Tag.Chunk, _ = strings.Cut(rest, "/")
	}
	switch m.State {
	case "BATCH_STATE_SUCCEEDED":
		j.Status = Completed
	case "BATCH_STATE_FAILED":
		j.Status = Failed
	case "BATCH_STATE_CANCELLED":
		j.Status = Cancelled
	case "BATCH_STATE_EXPIRED":
		j.Status = Expired
	default:
		j.Status = InProgress
	}
	if op.Error != nil {
		j.Status, j.Failure, j.FailureCode = Failed, op.Error.Message, rpcCode(op.Error.Code)
	}
	if op.Done && !j.Status.Ended() {
		j.Status = Completed
	}
	return j
}

// walkObject reads one JSON object from dec, calling fn with each key; fn must consume the value.
func walkObject(dec *json.Decoder, fn func(key string, dec *json.Decoder) error) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("expected an object, got %v", t)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if err := fn(key, dec); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// skipValue consumes one JSON value token by token (an array of answers is never held whole).
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}
