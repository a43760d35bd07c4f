package sim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/sim"
)

// Over a real loopback connection: each API answers, a reset fault breaks the connection, and a hang
// ends when the client gives up.
func TestOverHTTP(t *testing.T) {
	ts := httptest.NewServer(sim.New(oneModel(t, "        rpm: 100", ""), sim.Options{}))
	defer ts.Close()
	for _, api := range apis {
		texts := prompt(2)
		r := mustSend(t, t.Context(), ts.Client(), api, ts.URL, "m", texts, 9)
		if want, _, _ := sim.Reply(texts, 9); r.status != 200 || r.text != want {
			t.Errorf("%s: %d %s", api, r.status, r.body)
		}
	}

	fs := sim.New(oneModel(t, "", "      faults: {reset: 0.5, hang: 0.5}"), sim.Options{Seed: 3})
	faulty := httptest.NewServer(fs)
	defer faulty.Close()
	var resets, hangs atomic.Int32
	for i := range 6 {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		_, err := send(t, ctx, faulty.Client(), "openai", faulty.URL, "m", prompt(i), 5)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			hangs.Add(1)
		case err != nil:
			resets.Add(1)
		default:
			t.Fatalf("request %d got a response", i)
		}
	}
	if st := fs.Stats()["p/m"]; st.Faults != 6 || st.Requests != 6 || resets.Load() == 0 || hangs.Load() == 0 {
		t.Fatalf("resets %d hangs %d, stats %+v", resets.Load(), hangs.Load(), st)
	}
}

// benchLoop posts one fixed OpenAI request per iteration, in parallel, and reports req/s.
func benchLoop(b *testing.B, c *http.Client, url string) {
	body := []byte(`{"model":"m","max_tokens":50,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%v %d", err, resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkServerLoopback measures the handler over a real loopback server: no limits, no latency.
func BenchmarkServerLoopback(b *testing.B) {
	ts := httptest.NewServer(sim.New(oneModel(b, "", ""), sim.Options{}))
	defer ts.Close()
	c := ts.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
	benchLoop(b, c, ts.URL)
}

// BenchmarkTransport measures the in-process transport: no limits, no latency.
func BenchmarkTransport(b *testing.B) {
	benchLoop(b, client(sim.New(oneModel(b, "", ""), sim.Options{})), base)
}
