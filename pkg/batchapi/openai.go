package batchapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/openai"
)

// openAIClient speaks the OpenAI Batch API (and OpenAI-compatible providers with Files + Batches).
type openAIClient struct {
	h    httpDoer
	base string // includes /v1
}

// Metadata keys of the tag on an OpenAI batch.
const (
	metaJob   = "llmbatch_job"
	metaChunk = "llmbatch_chunk"
)

func (c *openAIClient) Dialect() string { return "openai" }

func (c *openAIClient) Encode(it Item) ([]byte, error) {
	body, err := openai.EncodeBody(it.Request)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.h.provider, it.CustomID, err)
	}
	line := make([]byte, 0, len(body)+96+len(it.CustomID))
	line = append(line, `{"custom_id":`...)
	line = strconv.AppendQuote(line, it.CustomID)
	line = append(line, `,"method":"POST","url":"/v1/chat/completions","body":`...)
	line = append(line, body...)
	return append(line, "}\n"...), nil
}

func (c *openAIClient) Submit(ctx context.Context, ch *Chunk, hooks Hooks) (*Job, error) {
	boundary := multipart.NewWriter(io.Discard).Boundary()
	resp, err := c.h.stream(ctx, http.MethodPost, c.base+"/files", "multipart/form-data; boundary="+boundary, func(w io.Writer) error {
		mw := multipart.NewWriter(w)
		if err := mw.SetBoundary(boundary); err != nil {
			return err
		}
		if err := mw.WriteField("purpose", "batch"); err != nil {
			return err
		}
		fw, err := mw.CreateFormFile("file", ch.Tag.Job+"-"+ch.Tag.Chunk+".jsonl")
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(fw, 256<<10)
		if err := ch.Items(func(it Item) error {
			line, err := c.Encode(it)
			if err != nil {
				return err
			}
			_, err = bw.Write(line)
			return err
		}); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return mw.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", ch.Tag.Chunk, err)
	}
	var file struct {
		ID string `json:"id"`
	}
	if err := c.h.decode(resp, &file); err != nil {
		return nil, fmt.Errorf("upload %s: %w", ch.Tag.Chunk, err)
	}
	if hooks.Uploaded != nil {
		if err := hooks.Uploaded(file.ID); err != nil {
			return nil, err
		}
	}
	return c.Create(ctx, ch.Tag, file.ID)
}

// Create starts a batch over an uploaded input file: what Submit does after its upload, and what a
// resumed job does with a file it uploaded before a crash.
func (c *openAIClient) Create(ctx context.Context, tag Tag, fileID string) (*Job, error) {
	var b oaBatch
	err := c.h.sendJSON(ctx, http.MethodPost, c.base+"/batches", map[string]any{"input_file_id": fileID,
		"endpoint": "/v1/chat/completions", "completion_window": "24h",
		"metadata": map[string]string{metaJob: tag.Job, metaChunk: tag.Chunk}}, &b)
	if err != nil {
		return nil, fmt.Errorf("create batch for %s: %w", tag.Chunk, err)
	}
	return b.job(), nil
}

func (c *openAIClient) Get(ctx context.Context, id string) (*Job, error) {
	return fetchJob[oaBatch](ctx, &c.h, http.MethodGet, c.base+"/batches/"+url.PathEscape(id))
}

func (c *openAIClient) Cancel(ctx context.Context, id string) (*Job, error) {
	return fetchJob[oaBatch](ctx, &c.h, http.MethodPost, c.base+"/batches/"+url.PathEscape(id)+"/cancel")
}

func (c *openAIClient) List(ctx context.Context, f Filter) ([]*Job, error) {
	return listJobs[oaBatch](ctx, &c.h, c.base+"/batches?limit=100", "after", f,
		func(j *Job) bool { return f.Job == "" || j.Tag.Job == f.Job })
}

func (c *openAIClient) Results(ctx context.Context, job *Job, fn func(Result) error) error {
	for _, id := range []string{job.outputFile, job.errorFile} {
		if id == "" {
			continue
		}
		if err := c.readFile(ctx, id, fn); err != nil {
			return fmt.Errorf("results of %s: %w", job.ID, err)
		}
	}
	return nil
}

// readFile streams one output or error file line by line.
func (c *openAIClient) readFile(ctx context.Context, id string, fn func(Result) error) error {
	resp, err := c.h.do(ctx, http.MethodGet, c.base+"/files/"+url.PathEscape(id)+"/content", "", nil)
	if err != nil {
		return err
	}
	return c.h.readLines(resp, c.parseLine, fn)
}

func (c *openAIClient) parseLine(line []byte) (Result, error) {
	var l struct {
		CustomID string `json:"custom_id"`
		Response *struct {
			StatusCode int             `json:"status_code"`
			RequestID  string          `json:"request_id"`
			Body       json.RawMessage `json:"body"`
		} `json:"response"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return Result{}, &provider.APIError{Provider: c.h.provider, Malformed: true, Err: fmt.Errorf("decode result line: %w", err)}
	}
	r := Result{CustomID: l.CustomID}
	switch {
	case l.Response != nil && l.Response.StatusCode >= 200 && l.Response.StatusCode <= 299:
		resp, err := openai.DecodeBody(l.Response.Body, "")
		if err != nil {
			r.Outcome, r.Retryable = LineErrored, true
			r.Err = &provider.APIError{Provider: c.h.provider, StatusCode: l.Response.StatusCode, Malformed: true, Err: err}
			return r, nil
		}
		if l.Response.RequestID != "" {
			resp.RequestID = l.Response.RequestID
		}
		r.Outcome, r.Response = LineOK, resp
	case l.Response != nil:
		info := openai.ParseError(l.Response.StatusCode, l.Response.Body)
		r.Outcome, r.Retryable = LineErrored, retryableStatus(l.Response.StatusCode)
		r.Err = &provider.APIError{Provider: c.h.provider, StatusCode: l.Response.StatusCode, Type: info.Type,
			Code: info.Code, Message: info.Message, Class: provider.ClassOf(info.Class)}
	case l.Error != nil && l.Error.Code == "batch_cancelled":
		r.Outcome, r.Retryable, r.Err = LineCanceled, true, syntheticError(c.h.provider, "", LineCanceled)
	case l.Error != nil && l.Error.Code == "batch_expired":
		r.Outcome, r.Retryable, r.Err = LineExpired, true, syntheticError(c.h.provider, "", LineExpired)
	default:
		msg := "result line without response or error"
		if l.Error != nil {
			msg = l.Error.Code + ": " + l.Error.Message
		}
		r.Outcome, r.Retryable = LineErrored, true
		r.Err = &provider.APIError{Provider: c.h.provider, Type: "batch_error", Message: msg}
	}
	return r, nil
}

// oaBatch is the Batch object.
type oaBatch struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	CreatedAt     int64             `json:"created_at"`
	OutputFileID  string            `json:"output_file_id"`
	ErrorFileID   string            `json:"error_file_id"`
	Metadata      map[string]string `json:"metadata"`
	RequestCounts struct {
		Total     int `json:"total"`
		Completed int `json:"completed"`
		Failed    int `json:"failed"`
	} `json:"request_counts"`
	Errors *struct {
		Data []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"data"`
	} `json:"errors"`
}

func (b *oaBatch) job() *Job {
	j := &Job{ID: b.ID, Status: Status(b.Status), CreatedAt: time.Unix(b.CreatedAt, 0),
		Tag:   Tag{Job: b.Metadata[metaJob], Chunk: b.Metadata[metaChunk]},
		Total: b.RequestCounts.Total, Done: b.RequestCounts.Completed + b.RequestCounts.Failed, Failed: b.RequestCounts.Failed,
		outputFile: b.OutputFileID, errorFile: b.ErrorFileID}
	if b.Errors != nil && len(b.Errors.Data) > 0 {
		j.FailureCode, j.Failure = b.Errors.Data[0].Code, b.Errors.Data[0].Message
	}
	switch j.Status {
	case Validating, InProgress, Finalizing, Cancelling, Completed, Failed, Expired, Cancelled:
	default:
		j.Status = InProgress // an unknown live state: keep polling
	}
	return j
}

// readLine returns the next line including its newline, however long.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}
