package batchrun_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/batchrun"
)

// BenchmarkSubmit200k plans, journals and uploads a 200,000-prompt lane (OpenAI dialect) as 4 jobs
// of 50,000 to the in-process simulator, four jobs in flight, and stops once all four are created.
// Prompts are made on the fly from their ids (as the engine re-reads them from the input), so the
// peak live heap it reports is the batch path's own plus the in-process simulator's copy of the
// accepted lines.
func BenchmarkSubmit200k(b *testing.B) {
	const n = 200_000
	mk := func(i int) batchrun.Prompt {
		return userPrompt("p"+strconv.Itoa(i), "gpt-sim",
			fmt.Sprintf("Summarise item %d of the catalogue: a plain sentence of about a hundred and fifty bytes describing it.", i), 200)
	}
	for range b.N {
		b.StopTimer()
		_, srv, cl := simBatchAPI(b, "providers:\n  - {name: p, type: sim, sim: {api: openai, batch: {turnaround: 1h}}, models: [{name: gpt-sim}]}\n")
		j, _, err := batchjournal.Open(batchjournal.Path(filepath.Join(b.TempDir(), "out.jsonl")), nil)
		if err != nil {
			b.Fatal(err)
		}
		var peak atomic.Uint64
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms runtime.MemStats
			tk := time.NewTicker(5 * time.Millisecond)
			defer tk.Stop()
			for {
				runtime.ReadMemStats(&ms)
				peak.Store(max(peak.Load(), ms.HeapAlloc))
				select {
				case <-done:
					return
				case <-tk.C:
				}
			}
		}()
		runtime.GC()
		ctx, cancel := context.WithCancel(context.Background())
		var created sync.Map
		b.StartTimer()
		err = batchrun.Run(ctx, batchrun.Options{Journal: j, Client: cl, Provider: "p", Model: "gpt-sim",
			Caps: batchapi.Caps{MaxRequests: 50_000, MaxBytes: 200 << 20}, Jobs: 4, Poll: batchapi.PollPolicy{First: time.Millisecond},
			Lookup: func(id string) (batchrun.Prompt, error) {
				i, err := strconv.Atoi(id[1:])
				return mk(i), err
			},
			OnPoll: func(chunk string, _ *batchapi.Job) {
				created.Store(chunk, true)
				k := 0
				created.Range(func(any, any) bool { k++; return true })
				if k == 4 {
					cancel()
				}
			},
			OnResult: func(string, batchapi.Result, *batchapi.Job) error { return nil },
		}, func(yield func(batchrun.Prompt) error) error {
			for i := range n {
				if err := yield(mk(i)); err != nil {
					return err
				}
			}
			return nil
		})
		b.StopTimer()
		close(done)
		wg.Wait()
		if ctx.Err() == nil {
			b.Fatalf("run ended before the four jobs were created: %v", err)
		}
		if got := srv.Stats()["p/gpt-sim"].BatchLines; got != n {
			b.Fatalf("%d lines accepted", got)
		}
		_ = j.Close()
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	}
}
