// Package replay serves recorded HTTP responses (testdata/providers/{api}/*.http) through an
// in-process http.RoundTripper so adapter tests exercise the real request/response path without a
// network, and records what the adapter sent.
package replay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Recorded is one recorded response.
type Recorded struct {
	StatusCode int
	Status     string
	Header     http.Header
	Body       []byte
}

// Dir returns the directory of an API's recorded responses: testdata/providers/{api} at the
// repository root.
func Dir(api string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "testdata", "providers", api)
}

// Load reads a recorded response: an HTTP/1.1 status line, headers, a blank line and the body.
func Load(path string) (*Recorded, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		return nil, fmt.Errorf("replay: parse %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("replay: read body of %s: %w", path, err)
	}
	return &Recorded{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header, Body: body}, nil
}

// Captured is one request an adapter sent.
type Captured struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Transport answers every request with Resp and records the requests. It is safe for concurrent use.
type Transport struct {
	Resp *Recorded

	mu   sync.Mutex
	reqs []Captured
}

// RoundTrip records r and returns a fresh copy of the recorded response.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	t.mu.Lock()
	t.reqs = append(t.reqs, Captured{Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(), Body: body})
	t.mu.Unlock()
	return Response(r, t.Resp), nil
}

// Requests returns the requests recorded so far.
func (t *Transport) Requests() []Captured {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Captured(nil), t.reqs...)
}

// Response builds an *http.Response for r from rec (the body is a fresh reader each call).
func Response(r *http.Request, rec *Recorded) *http.Response {
	return &http.Response{
		Status:        rec.Status,
		StatusCode:    rec.StatusCode,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.Header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(rec.Body)),
		ContentLength: int64(len(rec.Body)),
		Request:       r,
	}
}

// Client loads testdata/providers/{api}/{name} and returns a client that serves it, with the
// Transport for inspecting what was sent.
func Client(tb testing.TB, api, name string) (*http.Client, *Transport) {
	tb.Helper()
	rec, err := Load(filepath.Join(Dir(api), name))
	if err != nil {
		tb.Fatal(err)
	}
	t := &Transport{Resp: rec}
	return &http.Client{Transport: t}, t
}

// RoundTripFunc adapts a function to http.RoundTripper.
type RoundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f(r).
func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
