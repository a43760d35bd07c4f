package batchapi_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// heapPeak samples the live heap every millisecond until stop is called and returns the peak.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

// BenchmarkSubmit50k builds one 50,000-line chunk (planning pass: each line encoded and sized
// against the OpenAI caps) and uploads it to the in-process simulator (streamed multipart upload,
// batch created), per dialect. It reports the peak live heap, the in-process simulator's copy of
// the accepted lines included.
func BenchmarkSubmit50k(b *testing.B) {
	const n = 50_000
	for _, d := range dialects {
		b.Run(d.provider, func(b *testing.B) {
			mk := func(i int) *provider.Request {
				return &provider.Request{Model: d.model, MaxTokens: 200, Messages: []request.Message{
					{Role: "system", Content: request.Content{Text: "You are a careful assistant. Answer in one short paragraph."}},
					{Role: "user", Content: request.Content{Text: fmt.Sprintf("Summarise item %d of the catalogue: a plain sentence of about a hundred and fifty bytes describing it.", i)}}}}
			}
			var peak uint64
			for b.Loop() {
				b.StopTimer()
				e := newEnv(b, "{turnaround: 1h}")
				c := e.clients[d.provider]
				runtime.GC()
				stop := heapPeak()
				b.StartTimer()
				pl := batchapi.NewPlanner(batchapi.Caps{MaxRequests: 50_000, MaxBytes: 200 << 20})
				var bytes int64
				for i := range n {
					line, err := c.Encode(batchapi.Item{CustomID: batchapi.ChunkCustomID(i), Request: mk(i)})
					if err != nil {
						b.Fatal(err)
					}
					if full, err := pl.Add(fmt.Sprint(i), len(line), 0); err != nil || full != nil {
						b.Fatalf("planner cut a 50k chunk: %v", err)
					}
					bytes += int64(len(line))
				}
				plan := pl.Flush()
				job, err := c.Submit(context.Background(), &batchapi.Chunk{Tag: batchapi.Tag{Job: "bench", Chunk: "c1"}, Model: d.model,
					Items: func(yield func(batchapi.Item) error) error {
						for i := range plan.IDs {
							if err := yield(batchapi.Item{CustomID: batchapi.ChunkCustomID(i), Request: mk(i)}); err != nil {
								return err
							}
						}
						return nil
					}}, batchapi.Hooks{})
				b.StopTimer()
				peak = max(peak, stop())
				if err != nil || job.Total != n {
					b.Fatalf("%v %+v", err, job)
				}
				b.SetBytes(bytes)
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

var _ = http.StatusOK
var _ = sim.PromptTokens
