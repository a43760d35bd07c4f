package cache

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
)

func key(i int) []byte {
	k := sha256.Sum256([]byte(fmt.Sprint(i)))
	return k[:]
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func open(t testing.TB, path string, o Options) *Store {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func entry(lane string, content string, cost float64) Entry {
	p, m, _ := strings.Cut(lane, "/")
	return Entry{Provider: p, Model: m, Content: content, FinishReason: "stop",
		Usage: provider.Usage{InputTokens: 10, OutputTokens: 5}, CostUSD: cost}
}

// flush closes and reopens the store so the queued writes are committed.
func flush(t *testing.T, s *Store, o Options) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, s.Path(), o)
}

func TestPutGetLanesAndTTL(t *testing.T) {
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	o := Options{Now: c.now, TTL: time.Hour}
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path, o)
	s.Put(key(1), entry("a/m1", "from a", 0.5))
	s.Put(key(1), entry("b/m2", "from b", 0.25))
	s = flush(t, s, o)
	defer s.Close()

	for _, tc := range []struct {
		allowed map[string]int
		want    string
	}{
		{map[string]int{"a/m1": 0, "b/m2": 1}, "from a"},
		{map[string]int{"a/m1": 1, "b/m2": 0}, "from b"},
		{map[string]int{"b/m2": 0}, "from b"},
		{map[string]int{"c/m3": 0}, ""},
	} {
		e, err := s.Get(key(1), tc.allowed)
		if err != nil {
			t.Fatal(err)
		}
		if got := ""; e != nil {
			got = e.Content
			if got != tc.want {
				t.Errorf("allowed %v: got %q, want %q", tc.allowed, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("allowed %v: miss, want %q", tc.allowed, tc.want)
		}
	}
	if e, _ := s.Get(key(2), nil); e != nil {
		t.Errorf("hit for a key never stored: %+v", e)
	}
	e, _ := s.Get(key(1), map[string]int{"a/m1": 0})
	if e.CostUSD != 0.5 || e.Usage.OutputTokens != 5 || e.FinishReason != "stop" || !e.Created.Equal(c.t) {
		t.Errorf("entry %+v", e)
	}
	// An hour and a minute later the entries are expired: misses, and prune deletes them.
	c.t = c.t.Add(61 * time.Minute)
	if e, _ := s.Get(key(1), nil); e != nil {
		t.Errorf("expired entry served: %+v", e)
	}
	n, err := s.Prune()
	if err != nil || n != 2 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	st, _ := s.Stats()
	if st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("after prune: %+v", st)
	}
}

// TestEvictsLeastRecentlyUsed: with a cap of about 20 entries, writing 30 keeps the most recently
// used ones, including the oldest entry, which was read (touched) after the first 20.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	content := strings.Repeat("x", 1000)
	one := int64(len(content) + 200 + entryOverhead) // about one entry's size
	o := Options{Now: c.now, MaxBytes: 20 * one}
	s := open(t, filepath.Join(t.TempDir(), FileName), o)
	put := func(from, to int) {
		for i := from; i < to; i++ {
			c.t = c.t.Add(time.Second)
			s.Put(key(i), entry("a/m", content, 0.01))
			s = flush(t, s, o)
		}
	}
	put(0, 20) // below the cap: nothing is evicted yet
	c.t = c.t.Add(time.Second)
	if e, err := s.Get(key(0), nil); err != nil || e == nil {
		t.Fatalf("key 0: %v %v", e, err)
	}
	s.Touch(key(0), "a/m") // the oldest entry becomes the most recently used
	s = flush(t, s, o)
	put(20, 30)
	defer s.Close()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes > o.MaxBytes || st.Entries < 15 || st.Entries > 22 {
		t.Fatalf("after eviction: %+v (cap %d)", st, o.MaxBytes)
	}
	if e, _ := s.Get(key(0), nil); e == nil {
		t.Error("the touched entry was evicted before older untouched ones")
	}
	for _, i := range []int{1, 2, 3} {
		if e, _ := s.Get(key(i), nil); e != nil {
			t.Errorf("key %d (least recently used) survived", i)
		}
	}
	if e, _ := s.Get(key(29), nil); e == nil {
		t.Error("the newest entry is gone")
	}
	t.Logf("%d entries, %d bytes stored (cap %d), %d on disk", st.Entries, st.Bytes, o.MaxBytes, st.File)
}

func TestDamagedEntryIsNeverServed(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path, Options{})
	s.Put(key(1), entry("a/m", "the real answer", 0.1))
	s = flush(t, s, Options{})
	defer s.Close()
	// Flip the answer on disk as a damaged page would, leaving the checksum as it was.
	if _, err := s.db.Exec(`UPDATE entries SET value = replace(value, 'real', 'fake')`); err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(key(1), nil)
	if e != nil || err == nil || !strings.Contains(err.Error(), "damaged entry") {
		t.Fatalf("got %+v, %v; want a damaged-entry error", e, err)
	}
}

func TestCorruptFileFailsToOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(strings.Repeat("this is not a database\n", 400)), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("opened a file that is not a database")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("the error does not name the file: %v", err)
	}
	t.Logf("open: %v", err)
}

// TestTwoStoresAtOnce: two connections pools on one file (as two processes would have) write and
// read concurrently; every answer either wrote is readable by both.
func TestTwoStoresAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	a, b := open(t, path, Options{}), open(t, path, Options{})
	var wg sync.WaitGroup
	for w, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := w*1000 + i
				if err := s.Put(key(k), entry("a/m", fmt.Sprint(k), 0.001)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Get(key(k-1), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	s := open(t, path, Options{})
	defer s.Close()
	for _, k := range []int{0, 499, 1000, 1499} {
		if e, err := s.Get(key(k), nil); err != nil || e == nil || e.Content != fmt.Sprint(k) {
			t.Errorf("key %d: %+v %v", k, e, err)
		}
	}
	if st, _ := s.Stats(); st.Entries != 1000 {
		t.Errorf("%d entries, want 1000", st.Entries)
	}
}

func TestModesAndSampling(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		temp          *float64
		seed          bool
		on, always    bool
		read, readAll bool
	}{
		{nil, false, true, true, true, true},
		{f(0), false, true, true, true, true},
		{f(0.7), false, false, true, false, true},
		{f(0.7), true, true, true, true, true},
	} {
		req := &request.Request{Temperature: tc.temp}
		if tc.seed {
			req.Extra = map[string]json.RawMessage{"seed": json.RawMessage("7")}
		}
		if ModeOn.Uses(req) != tc.on || ModeAlways.Uses(req) != tc.always || ModeRead.Uses(req) != tc.read || ModeOff.Uses(req) {
			t.Errorf("temperature %v seed %v: on %v always %v read %v off %v", tc.temp, tc.seed,
				ModeOn.Uses(req), ModeAlways.Uses(req), ModeRead.Uses(req), ModeOff.Uses(req))
		}
	}
	if _, err := ParseMode("sometimes"); err == nil || !strings.Contains(err.Error(), "want on, off, read or always") {
		t.Errorf("ParseMode: %v", err)
	}
}

// TestSourceResultLine: a hit is an ordinary ok result line with cached true, cost 0, the original
// cost in cached_cost_usd and via cache; read mode never writes; sampled requests are not stored.
func TestSourceResultLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	hash := fmt.Sprintf("%x", key(1))
	req := &request.Request{ID: "a1", Hash: hash, Metadata: json.RawMessage(`{"row":1}`)}
	bought := &results.Result{CustomID: "old", Status: results.StatusOK, Provider: "p", Model: "m", Content: "hi",
		FinishReason: "stop", Usage: &provider.Usage{InputTokens: 3, OutputTokens: 1}, CostUSD: 0.0042, Attempts: 2, RequestHash: hash}

	s := open(t, path, Options{Now: now})
	read := NewSource(s, ModeRead, []string{"p/m"}, now, nil)
	read.Store(req, bought)
	read.Close()
	s = open(t, path, Options{Now: now})
	if st, _ := s.Stats(); st.Entries != 0 {
		t.Fatalf("--cache read stored %d entries", st.Entries)
	}
	on := NewSource(s, ModeOn, []string{"p/m"}, now, nil)
	hot := 0.9
	on.Store(&request.Request{ID: "x", Hash: fmt.Sprintf("%x", key(2)), Temperature: &hot}, bought)
	on.Store(req, bought)
	on.Close()

	s = open(t, path, Options{Now: now})
	src := NewSource(s, ModeOn, []string{"p/m"}, now, nil)
	defer src.Close()
	r, hit := src.Known(req)
	if !hit {
		t.Fatal("miss")
	}
	if _, hit := src.Known(&request.Request{ID: "x", Hash: fmt.Sprintf("%x", key(2))}); hit {
		t.Error("a sampled request was stored under --cache on")
	}
	line, _ := json.Marshal(r)
	want := `{"custom_id":"a1","status":"ok","provider":"p","model":"m","content":"hi","finish_reason":"stop",` +
		`"usage":{"input_tokens":3,"output_tokens":1},"attempts":0,"request_hash":"` + hash + `","metadata":{"row":1},` +
		`"started_at":"2026-01-01T00:00:00.000Z","finished_at":"2026-01-01T00:00:00.000Z","via":"cache","cached":true,"cached_cost_usd":0.0042}`
	if string(line) != want {
		t.Errorf("hit line\n got %s\nwant %s", line, want)
	}
	if n, saved := src.Hits(); n != 1 || saved != 0.0042 {
		t.Errorf("hits %d saved %v", n, saved)
	}
	other := NewSource(s, ModeOn, []string{"q/m"}, now, nil)
	if _, hit := other.Known(req); hit {
		t.Error("an answer from a lane outside the run was used")
	}
}
