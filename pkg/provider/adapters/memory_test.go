package adapters_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
)

// hugeBody is a response body of n bytes made on the fly — prefix, then filler — so a 1 GiB body
// costs no memory of its own.
type hugeBody struct {
	prefix, filler []byte
	n, off         int64
}

func (h *hugeBody) Read(p []byte) (int, error) {
	if h.off >= h.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), h.n-h.off)]
	k := 0
	if h.off < int64(len(h.prefix)) {
		k = copy(p, h.prefix[h.off:])
	}
	for k < len(p) {
		k += copy(p[k:], h.filler)
	}
	h.off += int64(len(p))
	return len(p), nil
}

// hugePrefix is the start of a body of the dialect whose text never ends: a success that is all
// content, or an error whose message is.
func hugePrefix(d dialect, status int) string {
	switch {
	case status >= 400:
		return `{"error":{"type":"server_error","message":"`
	case d.name == "anthropic":
		return `{"type":"message","content":[{"type":"text","text":"`
	case d.name == "gemini":
		return `{"candidates":[{"content":{"parts":[{"text":"`
	}
	return `{"choices":[{"message":{"content":"`
}

// hugeTransport answers every request with status and a body of size bytes, its length declared in
// Content-Length or not (chunked).
func hugeTransport(d dialect, status int, size int64, declared bool) http.RoundTripper {
	filler := bytes.Repeat([]byte("a"), 64<<10)
	return replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		cl := int64(-1)
		if declared {
			cl = size
		}
		body := &hugeBody{prefix: []byte(hugePrefix(d, status)), filler: filler, n: size}
		return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(body), ContentLength: cl, Request: r}, nil
	})
}

// peakHeap runs f and returns the largest heap (bytes in live and not yet swept objects) seen while it ran,
// sampled every 200µs.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	var peak uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	return max(peak, read())
}

// hugeRun sends inFlight requests at once, spread over the three adapters sharing one Budget, each
// answered with a body of size bytes, and returns their errors and the peak heap.
func hugeRun(tb testing.TB, status int, size int64, declared bool, inFlight int) ([]error, uint64) {
	budget := provider.NewBudget(0)
	adapters := make([]*provider.Adapter, inFlight)
	for i := range adapters {
		d := dialects()[i%3]
		adapters[i] = replay.MustNew(tb, d.new, provider.Options{Name: d.name, APIKey: testKey, Budget: budget,
			Client: &http.Client{Transport: hugeTransport(d, status, size, declared)}})
	}
	errs := make([]error, inFlight)
	peak := peakHeap(func() {
		var wg sync.WaitGroup
		for i, a := range adapters {
			wg.Go(func() {
				resp, err := a.Complete(context.Background(), hello("m"))
				if resp != nil {
					err = errors.New("a huge body was accepted")
				}
				errs[i] = err
			})
		}
		wg.Wait()
	})
	return errs, peak
}

// TestHugeBodiesBoundedHeap: 32 requests in flight, each answered with a 1 GiB body (200 or 500,
// chunked or with Content-Length), keep the heap under 300 MiB. A 200 is a retryable
// invalid_response "response larger than 32 MiB"; a 500 is a server_error read only as far as the
// MaxErrorBody it keeps.
func TestHugeBodiesBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 1 GiB")
	}
	const limit = 300 << 20
	for _, tc := range []struct {
		name     string
		status   int
		declared bool
		want     provider.ErrorType
	}{
		{"200 chunked", 200, false, provider.TypeInvalidResponse},
		{"200 content-length", 200, true, provider.TypeInvalidResponse},
		{"500 chunked", 500, false, provider.TypeServerError},
		{"500 content-length", 500, true, provider.TypeServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs, peak := hugeRun(t, tc.status, 1<<30, tc.declared, 32)
			for i, err := range errs {
				var ae *provider.APIError
				if !errors.As(err, &ae) || ae.Class.Type != tc.want || !ae.Class.Retryable {
					t.Fatalf("request %d: err = %v (%+v)", i, err, ae)
				}
				if tc.status == 200 && !strings.Contains(err.Error(), "response larger than 32 MiB") {
					t.Errorf("request %d: Error() = %q", i, err)
				}
				if len(ae.Body) > provider.MaxErrorBody {
					t.Errorf("request %d: kept %d bytes of body", i, len(ae.Body))
				}
			}
			t.Logf("32 in flight × 1 GiB %s: peak heap %d MiB (limit %d MiB)", tc.name, peak>>20, limit>>20)
			if peak >= limit {
				t.Errorf("peak heap %d MiB, want under %d MiB", peak>>20, limit>>20)
			}
		})
	}
}

// BenchmarkHugeBodies32InFlight reports the peak heap of 32 requests in flight each answered with a
// 1 GiB chunked 200 body (peak-heap-MiB).
func BenchmarkHugeBodies32InFlight(b *testing.B) {
	var worst uint64
	for b.Loop() {
		_, peak := hugeRun(b, 200, 1<<30, false, 32)
		worst = max(worst, peak)
	}
	b.ReportMetric(float64(worst)/(1<<20), "peak-heap-MiB")
}
