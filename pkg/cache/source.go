package cache

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/pkg/money"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
)

// Mode is the --cache setting.
type Mode int

// The --cache modes.
const (
	ModeOn     Mode = iota // read and write; sampled requests (temperature > 0, no seed) are left out
	ModeOff                // neither read nor write
	ModeRead               // read, never write
	ModeAlways             // read and write every request, sampled ones too
)

// ParseMode reads a --cache value.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "on":
		return ModeOn, nil
	case "off":
		return ModeOff, nil
	case "read":
		return ModeRead, nil
	case "always":
		return ModeAlways, nil
	}
	return ModeOn, fmt.Errorf("--cache %q: want on, off, read or always", s)
}

func (m Mode) String() string { return [...]string{"on", "off", "read", "always"}[m] }

// Sampled reports whether req asks for a fresh sample: a temperature above 0 and no seed. A user
// who samples wants new samples, so such requests are cached only with --cache always.
func Sampled(req *request.Request) bool {
	if req.Temperature == nil || *req.Temperature <= 0 {
		return false
	}
	_, seeded := req.Extra["seed"]
	return !seeded
}

// Uses reports whether mode m looks req up in the cache.
func (m Mode) Uses(req *request.Request) bool {
	return m == ModeAlways || (m == ModeOn || m == ModeRead) && !Sampled(req)
}

// Source answers a run's prompts from a Store before they are sent and stores the answers the run
// buys. It implements the engine's "result source checked before sending". A failure of the store
// is reported once through the warn callback and turns the cache off for the rest of the run: a
// cache that misbehaves is bypassed, never trusted.
type Source struct {
	store *Store
	mode  Mode
	lanes map[string]int // the run's lanes ("provider/model") by preference; nil = any
	now   func() time.Time
	warn  func(error)

	broken atomic.Bool
	once   sync.Once
	hits   atomic.Int64
	saved  atomic.Int64 // cached cost of the hits, in 1e-10 USD
	stored atomic.Int64
}

// NewSource serves a run from store in mode m. lanes are the lanes the run may use, by preference
// (a cached answer from another lane is not used); warn reports the first store failure.
func NewSource(store *Store, m Mode, lanes []string, now func() time.Time, warn func(error)) *Source {
	s := &Source{store: store, mode: m, now: now, warn: warn}
	if lanes != nil {
		s.lanes = make(map[string]int, len(lanes))
		for i, l := range lanes {
			if _, dup := s.lanes[l]; !dup {
				s.lanes[l] = i
			}
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func (s *Source) fail(err error) {
	s.broken.Store(true)
	s.once.Do(func() {
		if s.warn != nil {
			s.warn(err)
		}
	})
}

// Lookup returns the cached answer for req, if the mode allows it and one is stored.
func (s *Source) Lookup(req *request.Request) (*Entry, bool) {
	if s == nil || s.broken.Load() || !s.mode.Uses(req) {
		return nil, false
	}
	key, err := Key(req.Hash)
	if err != nil {
		return nil, false
	}
	e, err := s.store.Get(key, s.lanes)
	if err != nil {
		s.fail(err)
		return nil, false
	}
	if e == nil {
		return nil, false
	}
	if err := s.store.Touch(key, e.Lane()); err != nil {
		s.fail(err)
	}
	return e, true
}

// Known answers req from the cache: an ordinary ok result line with cached true, cost_usd 0, the
// original cost in cached_cost_usd and via "cache". Nothing is sent for it.
func (s *Source) Known(req *request.Request) (*results.Result, bool) {
	e, ok := s.Lookup(req)
	if !ok {
		return nil, false
	}
	s.hits.Add(1)
	s.saved.Add(int64(math.Round(e.CostUSD * 1e10)))
	u := e.Usage
	at := results.Timestamp(s.now())
	return &results.Result{CustomID: req.ID, Status: results.StatusOK, Provider: e.Provider, Model: e.Model,
		Content: e.Content, ToolCalls: e.ToolCalls, FinishReason: e.FinishReason, Usage: &u, CostUSD: 0,
		CachedCostUSD: money.Round(e.CostUSD), Cached: true, Via: "cache", Attempts: 0, RequestHash: req.Hash,
		RequestID: e.RequestID, Metadata: req.Metadata, StartedAt: at, FinishedAt: at}, true
}

// Store keeps r, the bought answer to req, when the mode writes and allows req. Error lines and
// answers that came from the cache are not stored.
func (s *Source) Store(req *request.Request, r *results.Result) {
	if s == nil || s.broken.Load() || r == nil || r.Status != results.StatusOK || r.Cached {
		return
	}
	if s.mode != ModeOn && s.mode != ModeAlways || !s.mode.Uses(req) {
		return
	}
	key, err := Key(req.Hash)
	if err != nil {
		return
	}
	e := Entry{Provider: r.Provider, Model: r.Model, Content: r.Content, ToolCalls: json.RawMessage(r.ToolCalls),
		FinishReason: r.FinishReason, CostUSD: money.Round(r.CostUSD), RequestID: r.RequestID}
	if r.Usage != nil {
		e.Usage = *r.Usage
	}
	if err := s.store.Put(key, e); err != nil {
		s.fail(err)
		return
	}
	s.stored.Add(1)
}

// Hits is the number of prompts answered from the cache so far; SavedUSD what they cost when bought.
func (s *Source) Hits() (n int, savedUSD float64) {
	if s == nil {
		return 0, 0
	}
	return int(s.hits.Load()), money.Round(float64(s.saved.Load()) * money.Precision)
}

// Close flushes the answers stored during the run and closes the store; a write failure is
// reported through warn (once) rather than failing the run, whose results are already written.
func (s *Source) Close() {
	if s == nil {
		return
	}
	if err := s.store.Close(); err != nil {
		s.fail(err)
	}
}
