package batchapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// httpDoer sends the batch endpoints' requests (GET, JSON POST, streamed uploads), which
// provider.Call (one buffered JSON POST) does not cover, with the same error shape.
type httpDoer struct {
	provider string
	client   *http.Client
	now      func() time.Time
	secret   string
	header   http.Header
	parse    func(status int, body []byte) provider.ErrorInfo
}

// maxJSONBody bounds a job object or list read into memory.
const maxJSONBody = 16 << 20

// do sends one request; body may be nil. A non-2xx answer is an *provider.APIError (its body read,
// capped, and scrubbed of the key); on success the caller owns resp.Body.
func (h *httpDoer) do(ctx context.Context, method, url, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, &provider.APIError{Provider: h.provider, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header = h.header.Clone()
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	} else {
		req.Header.Del("Content-Type")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return nil, &provider.APIError{Provider: h.provider, ConnBroken: true, Err: h.scrub(err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, provider.MaxErrorBody))
	if h.secret != "" {
		raw = bytes.ReplaceAll(raw, []byte(h.secret), []byte("[redacted]"))
	}
	limits := provider.ParseRateLimits(resp.Header, h.now())
	var info provider.ErrorInfo
	if h.parse != nil {
		info = h.parse(resp.StatusCode, raw)
	}
	if info.Message == "" {
		info.Message = strings.TrimSpace(http.StatusText(resp.StatusCode) + ": " + strings.Join(strings.Fields(string(raw)), " "))
	}
	ra := limits.RetryAfter
	if ra == 0 {
		ra = info.RetryAfter
	}
	return nil, &provider.APIError{Provider: h.provider, StatusCode: resp.StatusCode, Type: info.Type, Code: info.Code,
		Message: info.Message, RetryAfter: ra, Body: raw, Limits: limits, Class: provider.ClassOf(info.Class)}
}

// getJSON GETs url and decodes the JSON answer into v.
func (h *httpDoer) getJSON(ctx context.Context, url string, v any) error {
	return h.sendJSON(ctx, http.MethodGet, url, nil, v)
}

// sendJSON sends in (nil = no body) as JSON and decodes the answer into v (nil = discard).
func (h *httpDoer) sendJSON(ctx context.Context, method, url string, in, v any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", h.provider, err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := h.do(ctx, method, url, ct, body)
	if err != nil {
		return err
	}
	return h.decode(resp, v)
}

// decode reads a 2xx JSON body into v, a Malformed *provider.APIError when it is not.
func (h *httpDoer) decode(resp *http.Response, v any) error {
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if err != nil {
		return &provider.APIError{Provider: h.provider, StatusCode: resp.StatusCode, ConnBroken: true, Err: err}
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return &provider.APIError{Provider: h.provider, StatusCode: resp.StatusCode, Malformed: true,
			Body: raw[:min(len(raw), provider.MaxErrorBody)], Err: fmt.Errorf("decode response: %w", err)}
	}
	return nil
}

// stream sends a body produced by write while it is being sent (io.Pipe), so an upload is never
// held whole. write's error wins over the transport's (which is then only a symptom of it).
func (h *httpDoer) stream(ctx context.Context, method, url, contentType string, write func(w io.Writer) error) (*http.Response, error) {
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := write(pw)
		_ = pw.CloseWithError(err)
		werr <- err
	}()
	resp, err := h.do(ctx, method, url, contentType, pr)
	_ = pr.CloseWithError(errRequestDone) // unblocks a writer the server stopped reading
	if we := <-werr; we != nil && !errors.Is(we, io.ErrClosedPipe) && !errors.Is(we, errRequestDone) {
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, we
	}
	return resp, err
}

// errRequestDone is what a body writer sees when the request ended before it finished writing.
var errRequestDone = errors.New("request finished")

func (h *httpDoer) scrub(err error) error {
	if h.secret == "" || !strings.Contains(err.Error(), h.secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), h.secret, "[redacted]"))
}

// batchObject is a pointer to a dialect's decoded batch resource, which converts to the neutral Job.
type batchObject[T any] interface {
	*T
	job() *Job
}

// fetchJob sends method to u with no body (a GET, or a POST such as cancel) and converts the
// dialect's batch resource in the answer.
func fetchJob[T any, P batchObject[T]](ctx context.Context, h *httpDoer, method, u string) (*Job, error) {
	var b T
	var err error
	if method == http.MethodGet {
		err = h.getJSON(ctx, u, &b)
	} else {
		err = h.sendJSON(ctx, method, u, nil, &b)
	}
	if err != nil {
		return nil, err
	}
	return P(&b).job(), nil
}

// listJobs pages through a list of batches in the shape OpenAI and Anthropic share (data, has_more,
// last_id; newest first) from first, passing the last id as afterParam, until a job created before
// f.Since; it keeps the jobs keep accepts.
func listJobs[T any, P batchObject[T]](ctx context.Context, h *httpDoer, first, afterParam string, f Filter, keep func(*Job) bool) ([]*Job, error) {
	var out []*Job
	u := first
	for {
		var page struct {
			Data    []T    `json:"data"`
			HasMore bool   `json:"has_more"`
			LastID  string `json:"last_id"`
		}
		if err := h.getJSON(ctx, u, &page); err != nil {
			return nil, err
		}
		for i := range page.Data {
			j := P(&page.Data[i]).job()
			if j.CreatedAt.Before(f.Since) {
				return out, nil
			}
			if keep(j) {
				out = append(out, j)
			}
		}
		if !page.HasMore || page.LastID == "" {
			return out, nil
		}
		u = first + "&" + afterParam + "=" + url.QueryEscape(page.LastID)
	}
}

// writeArray streams one JSON body to w: head, then every item of ch as encode writes it (with a
// leading comma, dropped from the first), then tail; the chunk is never held whole in memory.
func writeArray(w io.Writer, head, tail string, ch *Chunk, encode func(Item) ([]byte, error)) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString(head); err != nil {
		return err
	}
	first := true
	if err := ch.Items(func(it Item) error {
		el, err := encode(it)
		if err != nil {
			return err
		}
		if first {
			el, first = el[1:], false
		}
		_, err = bw.Write(el)
		return err
	}); err != nil {
		return err
	}
	if _, err := bw.WriteString(tail); err != nil {
		return err
	}
	return bw.Flush()
}

// readLines streams a JSONL results body, closing it: each non-empty line is parsed by parse and
// handed to fn; a body cut short is a broken connection (retryable).
func (h *httpDoer) readLines(resp *http.Response, parse func([]byte) (Result, error), fn func(Result) error) error {
	defer func() { _ = resp.Body.Close() }()
	br := bufio.NewReaderSize(resp.Body, 256<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			r, perr := parse(line)
			if perr != nil {
				return perr
			}
			if ferr := fn(r); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &provider.APIError{Provider: h.provider, ConnBroken: true, Err: err}
		}
	}
}
