package cache

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fill writes n entries with answers of about 300 bytes (a short completion) to a new cache.
func fill(tb testing.TB, n int) *Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), FileName)
	o := Options{MaxBytes: 1 << 40}
	s := open(tb, path, o)
	content := strings.Repeat("The answer, with some detail. ", 10)
	for i := range n {
		if err := s.Put(key(i), entry("openai/gpt-4o-mini", content+strconv.Itoa(i), 0.0000766)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return open(tb, path, o)
}

// BenchmarkLookup measures Get on a cache of 100,000 entries, keys drawn at random (hits), from
// one goroutine as the engine's producer calls it. Target: at least 50,000 lookups/s.
func BenchmarkLookup(b *testing.B) {
	s := fill(b, 100_000)
	defer s.Close()
	allowed := map[string]int{"openai/gpt-4o-mini": 0}
	keys := make([][]byte, 100_000)
	for i := range keys {
		keys[i] = key(i)
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	start, cpu := time.Now(), cpuTime()
	for b.Loop() { // b.Loop runs the setup above once, not once per b.N
		e, err := s.Get(keys[r.IntN(len(keys))], allowed)
		if err != nil || e == nil {
			b.Fatal(e, err)
		}
		n++
	}
	report(b, n, start, cpu)
}

// report adds lookups per second of wall time and per second of the process's CPU time: on a
// shared machine the wall rate says more about the neighbours than about the cache.
func report(b *testing.B, n int, start time.Time, cpu time.Duration) {
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "lookups/s")
	b.ReportMetric(float64(n)/(cpuTime()-cpu).Seconds(), "lookups/cpu-s")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLookupMiss measures Get for keys that are not stored (a first run).
func BenchmarkLookupMiss(b *testing.B) {
	s := fill(b, 100_000)
	defer s.Close()
	keys := make([][]byte, 100_000)
	for i := range keys {
		keys[i] = key(1_000_000 + i)
	}
	n := 0
	start, cpu := time.Now(), cpuTime()
	for b.Loop() {
		if e, err := s.Get(keys[n%len(keys)], nil); err != nil || e != nil {
			b.Fatal(e, err)
		}
		n++
	}
	report(b, n, start, cpu)
}

// TestCacheSizeOnDisk fills a cache with LLMBATCH_CACHE_ENTRIES (e.g. 1000000) answers of about
// 300 bytes and reports the file's size. A million takes a minute or more, so it runs only when asked.
func TestCacheSizeOnDisk(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LLMBATCH_CACHE_ENTRIES"))
	if n <= 0 {
		t.Skip("set LLMBATCH_CACHE_ENTRIES=1000000 to fill a cache of that many entries and report its size")
	}
	start := time.Now()
	s := fill(t, n)
	defer s.Close()
	filled := time.Since(start)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != int64(n) {
		t.Fatalf("%d entries, want %d", st.Entries, n)
	}
	fmt.Printf("%d entries: filled in %s (%.0f/s); %d bytes on disk (%.0f bytes an entry), %d counted against the cap\n",
		n, filled.Round(time.Millisecond), float64(n)/filled.Seconds(), st.File, float64(st.File)/float64(n), st.Bytes)
}
