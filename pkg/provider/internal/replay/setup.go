package replay

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// Now is the clock of every adapter test: always 2025-06-10 12:00 UTC.
func Now() time.Time { return time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC) }

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }

// New is an adapter constructor (openai.New, anthropic.New, gemini.New).
type New func(provider.Options) (*provider.Adapter, error)

// Adapter builds the adapter of newFn with o, answering every request with the recorded response
// testdata/providers/{api}/{fixture}; o.Client and o.Now default to that replay and Now. It returns
// the Transport for inspecting what was sent.
func Adapter(tb testing.TB, newFn New, api, fixture string, o provider.Options) (*provider.Adapter, *Transport) {
	tb.Helper()
	rec, err := Load(filepath.Join(Dir(api), fixture))
	if err != nil {
		tb.Fatal(err)
	}
	tr := &Transport{Resp: rec}
	if o.Client == nil {
		o.Client = &http.Client{Transport: tr}
	}
	return MustNew(tb, newFn, o), tr
}

// MustNew builds the adapter of newFn with o (o.Now defaulting to Now), failing the test on error.
func MustNew(tb testing.TB, newFn New, o provider.Options) *provider.Adapter {
	tb.Helper()
	if o.Now == nil {
		o.Now = Now
	}
	a, err := newFn(o)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// Serve returns a client whose every request is answered with status, header and body.
func Serve(status int, header http.Header, body string) *http.Client {
	if header == nil {
		header = http.Header{}
	}
	rec := &Recorded{StatusCode: status, Status: http.StatusText(status), Header: header, Body: []byte(body)}
	return &http.Client{Transport: RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		return Response(r, rec), nil
	})}
}

// JSONEqual fails the test unless got and want are the same JSON document (key order and spacing
// aside).
func JSONEqual(tb testing.TB, got []byte, want string) {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		tb.Fatalf("want invalid JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("JSON mismatch\n got  %s\n want %s", got, want)
	}
}

// MustComplete sends req through p and returns the response, failing the test on error.
func MustComplete(tb testing.TB, p provider.Provider, req *provider.Request) *provider.Response {
	tb.Helper()
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}
