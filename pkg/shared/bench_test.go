package shared

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
	"github.com/llmbatch/llmbatch/pkg/shared/redistest"
)

// roundTrips counts the commands and pipelines a client sends: one each is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkAdmission is one process with 64 requests in flight against a local redis-server, each
// request doing what the engine does on the hot path: Wait (admission), Observe (headers), Settle.
// The limits are set far above the rate so the script runs every check without making anyone wait.
// It reports admissions/s and round trips per request: "usual" settles within the estimate with
// headers that confirm the known limits (the settlement is skipped), "under-estimate" uses more
// tokens than estimated, so every settlement goes to Redis.
//
//	go test -run '^$' -bench Admission -benchtime 20000x ./pkg/shared/
func BenchmarkAdmission(b *testing.B) {
	b.Run("usual", func(b *testing.B) { benchAdmission(b, 250) })
	b.Run("under-estimate", func(b *testing.B) { benchAdmission(b, 350) })
}

func benchAdmission(b *testing.B, actual int) {
	srv := redistest.Start(b)
	s, err := Open(context.Background(), srv.URL(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var rt roundTrips
	s.rdb.AddHook(&rt)
	l := s.Lane(testInfo(), ratelimit.Limits{RPM: 100_000_000, TPM: 1_000_000_000_000})
	hdr := provider.RateLimits{HasRequests: true, LimitRequests: 100_000_000, RemainingRequests: 99_999_999,
		HasTokens: true, LimitTokens: 1_000_000_000_000, RemainingTokens: 999_999_999_000}
	const inFlight = 64
	var next atomic.Int64
	rt.n.Store(0)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t, err := l.Wait(context.Background(), 300)
				if err != nil {
					b.Error(err)
					return
				}
				l.Observe(hdr)
				t.Settle(actual)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "admissions/s")
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/req")
	if s.Down() {
		b.Fatal("Redis was lost during the benchmark")
	}
}
