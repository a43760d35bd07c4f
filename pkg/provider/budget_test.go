package provider_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
)

// gatedBody serves n bytes, then (when gate is set) signals reached and blocks until gate closes,
// then ends. read counts the bytes handed out; atMark (when set) is closed once mark bytes are out.
type gatedBody struct {
	n       int
	read    atomic.Int64
	gate    chan struct{}
	reached chan struct{}
	mark    int64
	atMark  chan struct{}
	once    sync.Once
}

func (g *gatedBody) Read(p []byte) (int, error) {
	if left := g.n - int(g.read.Load()); left > 0 {
		k := min(len(p), left)
		for i := range k {
			p[i] = 'a'
		}
		if g.read.Add(int64(k)) >= g.mark && g.atMark != nil {
			g.once.Do(func() { close(g.atMark) })
		}
		return k, nil
	}
	if g.gate != nil {
		close(g.reached)
		<-g.gate
		g.gate = nil
	}
	return 0, io.EOF
}

// bodyClient answers every request with status and body, its length declared as cl (-1 = unknown).
func bodyClient(status int, body io.Reader, cl int64) *http.Client {
	return &http.Client{Transport: replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(body), ContentLength: cl, Request: r}, nil
	})}
}

func budgetCall(b *provider.Budget) *provider.Call {
	c := newCall("http://api.test/v1/x")
	c.Budget = b
	return c
}

// TestBudgetBoundsLargeBodies: with a budget for one large body, a second large body waits (and gives
// up with its context: a canceled, retryable-by-nobody class), a small body is read at once, and once
// the first is released the next large body goes through.
func TestBudgetBoundsLargeBodies(t *testing.T) {
	budget := provider.NewBudget(1) // raised to one body at MaxResponseBody
	const large = 2 * provider.SmallBody

	first := &gatedBody{n: large, gate: make(chan struct{}), reached: make(chan struct{})}
	type result struct {
		res *provider.HTTPResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := budgetCall(budget).Do(context.Background(), bodyClient(200, first, -1), fixedNow)
		done <- result{res, err}
	}()
	<-first.reached // past SmallBody: it holds the whole budget

	small := &gatedBody{n: provider.SmallBody / 2}
	res, err := budgetCall(budget).Do(context.Background(), bodyClient(200, small, -1), fixedNow)
	if err != nil || len(res.Body) != provider.SmallBody/2 {
		t.Fatalf("small body while the budget is held: err=%v", err)
	}
	res.Release()

	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	second := &gatedBody{n: large, mark: provider.SmallBody, atMark: make(chan struct{})}
	go func() {
		_, err := budgetCall(budget).Do(ctx, bodyClient(200, second, -1), fixedNow)
		waiting <- err
	}()
	<-second.atMark // it has read SmallBody and now needs a grant
	cancel()
	err = <-waiting
	ae := asAPIError(t, err)
	if !errors.Is(err, context.Canceled) || ae.Class.Type != provider.TypeCanceled || !ae.ConnBroken ||
		second.read.Load() != provider.SmallBody {
		t.Fatalf("large body waiting for the budget, canceled: read %d, err=%v class=%+v", second.read.Load(), err, ae.Class)
	}

	close(first.gate)
	r := <-done
	if r.err != nil || len(r.res.Body) != large {
		t.Fatalf("first large body: err=%v", r.err)
	}
	r.res.Release()
	r.res.Release() // idempotent

	res, err = budgetCall(budget).Do(context.Background(), bodyClient(200, &gatedBody{n: large}, -1), fixedNow)
	if err != nil || len(res.Body) != large {
		t.Fatalf("large body after release: err=%v", err)
	}
	res.Release()
}

// TestBodyLimits: a declared length over the cap is refused unread; a body over the cap is read only
// to cap+1; a body longer than its Content-Length is broken; an error body is read only as far as it
// is kept.
func TestBodyLimits(t *testing.T) {
	declared := &gatedBody{n: provider.MaxResponseBody + 1}
	_, err := newCall("http://api.test/v1/x").Do(context.Background(), bodyClient(200, declared, provider.MaxResponseBody+1), fixedNow)
	ae := asAPIError(t, err)
	var tl *provider.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != provider.MaxResponseBody || ae.Class.Type != provider.TypeInvalidResponse || !ae.Class.Retryable ||
		declared.read.Load() != 0 || !strings.Contains(err.Error(), "response larger than 32 MiB") {
		t.Errorf("declared too large: read %d, err=%v class=%+v", declared.read.Load(), err, ae.Class)
	}

	chunked := &gatedBody{n: 1 << 30}
	_, err = newCall("http://api.test/v1/x").Do(context.Background(), bodyClient(200, chunked, -1), fixedNow)
	ae = asAPIError(t, err)
	if !errors.As(err, &tl) || !ae.Malformed || chunked.read.Load() > provider.MaxResponseBody+1 ||
		len(ae.Body) != provider.MaxErrorBody {
		t.Errorf("chunked too large: read %d, kept %d, err=%v", chunked.read.Load(), len(ae.Body), err)
	}

	_, err = newCall("http://api.test/v1/x").Do(context.Background(), bodyClient(200, &gatedBody{n: 100}, 10), fixedNow)
	if ae = asAPIError(t, err); !ae.ConnBroken || !strings.Contains(err.Error(), "longer than its Content-Length") {
		t.Errorf("body past Content-Length: err=%v", err)
	}

	huge500 := &gatedBody{n: 1 << 30}
	_, err = newCall("http://api.test/v1/x").Do(context.Background(), bodyClient(500, huge500, -1), fixedNow)
	ae = asAPIError(t, err)
	if ae.Class.Type != provider.TypeServerError || huge500.read.Load() > int64(provider.MaxErrorBody+len(secret)) ||
		len(ae.Body) != provider.MaxErrorBody {
		t.Errorf("huge 500: read %d, kept %d, class %+v", huge500.read.Load(), len(ae.Body), ae.Class)
	}
}
