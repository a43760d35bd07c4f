package shared

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/llmbatch/llmbatch/pkg/ratelimit"
)

//go:embed lane.lua
var laneLua string

//go:embed budget.lua
var budgetLua string

// Key layout. Every key of one lane carries the lane id as a hash tag, so one script may touch them
// all (and a Redis Cluster would keep them on one node).
const (
	prefix      = "llmbatch:"
	lanesKey    = prefix + "lanes" // set of lane ids
	procPrefix  = prefix + "proc:" // proc:<id> → JSON, expires when the process stops beating
	procTTL     = 15 * time.Second
	heartbeat   = 5 * time.Second
	reconnect   = 500 * time.Millisecond
	stateTTL    = 48 * time.Hour
	opTimeout   = 2 * time.Second
	dialTimeout = time.Second
)

func laneKeys(id string) []string {
	b := prefix + "{" + id + "}:"
	return []string{b + "lane", b + "win", b + "wincount", b + "procs"}
}

func budgetKey(job string) string { return prefix + "job:{" + job + "}:budget" }

// Options configure a Store.
type Options struct {
	Job    string       // the job name, shown in `llmbatch limits`; the shared budget's key
	Logger *slog.Logger // says once when Redis is lost and when it is back; nil = discard
	Now    func() time.Time
	Getenv func(string) string // for $LLMBATCH_REDIS_PASSWORD; nil = os.Getenv
}

// Store is this process's connection to the Redis that processes share limits, knowledge and
// budgets through. It keeps the process's heartbeat and, while Redis is unreachable, runs every
// lane on local limits (see Lane) and retries Redis in the background. Close stops it.
type Store struct {
	rdb    *redis.Client
	url    string // redacted
	id     string // this process
	job    string
	log    *slog.Logger
	now    func() time.Time
	start  time.Time
	lane   *redis.Script
	budget *redis.Script

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	lanes map[string]*Lane
	down  bool // Redis unreachable: lanes run locally until the monitor sees it back
}

var silenceRedisLog sync.Once

func voidLogger() *logging.VoidLogger { return &logging.VoidLogger{} }

// ErrUnreachable is wrapped by Open's error when the server does not answer.
var ErrUnreachable = errors.New("redis unreachable")

// Open connects to the Redis at rawURL (redis:// or rediss://), checks that it answers, registers
// this process and starts its heartbeat. Its errors name the server with the password masked.
func Open(ctx context.Context, rawURL string, o Options) (*Store, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	opts, err := parseURL(rawURL, o.Getenv)
	if err != nil {
		return nil, err
	}
	// go-redis's package-wide logger would print dial failures to stderr in its own format; they
	// reach us as errors, which the Store reports once per outage with the password masked.
	silenceRedisLog.Do(func() { redis.SetLogger(voidLogger()) })
	opts.DialTimeout = dialTimeout
	opts.DialerRetries = 1 // a refused dial means Redis is gone: fall back now, the monitor reconnects
	opts.ReadTimeout = opTimeout
	opts.WriteTimeout = opTimeout
	opts.MaxRetries = -1 // a failed call means "Redis lost" to the caller; retrying a script could admit twice
	opts.PoolSize = max(opts.PoolSize, 128)
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("shared: %s: %w: %v", Redact(rawURL), ErrUnreachable, scrub(err, opts.Password))
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s := &Store{
		rdb: rdb, url: Redact(rawURL), id: hex.EncodeToString(id[:]), job: o.Job, log: o.Logger, now: o.Now, start: o.Now().UTC(),
		lane: redis.NewScript(laneLua), budget: redis.NewScript(budgetLua),
		lanes: map[string]*Lane{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.beat(pctx); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("shared: %s: %w: %v", s.url, ErrUnreachable, scrub(err, opts.Password))
	}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// scrub removes a password from an error message (go-redis never quotes it; this is a second lock).
func scrub(err error, password string) string {
	if password == "" {
		return err.Error()
	}
	return strings.ReplaceAll(err.Error(), password, "xxxxx")
}

// URL returns the server's URL with the password masked.
func (s *Store) URL() string { return s.url }

// ProcessID returns this process's id in the shared state.
func (s *Store) ProcessID() string { return s.id }

// Close stops the heartbeat and the reconnect loop, removes this process's registration (best
// effort) and closes the connection.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_ = s.rdb.Del(ctx, procPrefix+s.id).Err()
	return s.rdb.Close()
}

// Down reports whether the lanes currently run on local limits because Redis is unreachable.
func (s *Store) Down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// loop beats every heartbeat while Redis is up and tries to reach it every reconnect while down.
func (s *Store) loop() {
	defer s.wg.Done()
	t := time.NewTimer(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
		if s.Down() {
			if s.rdb.Ping(ctx).Err() == nil {
				s.rejoin(ctx)
			}
		} else if err := s.beat(ctx); err != nil && s.ctx.Err() == nil {
			s.lost(err)
		}
		cancel()
		if s.Down() {
			t.Reset(reconnect)
		} else {
			t.Reset(heartbeat)
		}
	}
}

type procInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Job     string    `json:"job,omitempty"`
	Lanes   int       `json:"lanes"`
	Started time.Time `json:"started"`
}

// beat registers the process and its lanes and refreshes every lane's view, in one round trip.
func (s *Store) beat(ctx context.Context) error {
	host, _ := os.Hostname()
	s.mu.Lock()
	lanes := make([]*Lane, 0, len(s.lanes))
	for _, l := range s.lanes {
		lanes = append(lanes, l)
	}
	s.mu.Unlock()
	info, _ := json.Marshal(procInfo{Host: host, PID: os.Getpid(), Job: s.job, Lanes: len(lanes), Started: s.start})
	pipe := s.rdb.Pipeline()
	pipe.Set(ctx, procPrefix+s.id, info, procTTL)
	cmds := make([]*redis.Cmd, len(lanes))
	for i, l := range lanes {
		l.register(ctx, pipe)
		cmds[i] = l.script(ctx, pipe, "beat", nil)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, l := range lanes {
		if r, err := parseReply(cmds[i]); err == nil {
			l.apply(r)
		}
	}
	return nil
}

// lost switches every lane to local limits; it logs once per outage.
func (s *Store) lost(err error) {
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		return
	}
	s.down = true
	lanes := make([]*Lane, 0, len(s.lanes))
	for _, l := range s.lanes {
		lanes = append(lanes, l)
	}
	s.mu.Unlock()
	for _, l := range lanes {
		l.goLocal()
	}
	s.log.Warn("shared limits: Redis lost; each lane runs on local limits at this process's share of the last known ceiling until it is back",
		"redis", s.url, "error", err.Error())
}

// rejoin hands every lane back to Redis, adding what each admitted locally meanwhile.
func (s *Store) rejoin(ctx context.Context) {
	s.mu.Lock()
	lanes := make([]*Lane, 0, len(s.lanes))
	for _, l := range s.lanes {
		lanes = append(lanes, l)
	}
	s.mu.Unlock()
	for _, l := range lanes {
		if err := l.rejoin(ctx); err != nil {
			return // still unreachable: the monitor tries again
		}
	}
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
	s.log.Info("shared limits: Redis is back; lanes rejoined the shared limits", "redis", s.url)
}

// connLost reports whether err means Redis could not be reached (as opposed to a reply error such
// as a script bug, which is returned to the caller).
func connLost(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := err.Error()
		return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "READONLY")
	}
	return true
}

// Lane returns the shared lane for info, with the configured limits cfg (zero fields unknown). A
// process asks once per lane; asking again returns the same Lane.
func (s *Store) Lane(info LaneInfo, cfg ratelimit.Limits) *Lane {
	id := info.ID()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.lanes[id]; ok {
		return l
	}
	l := newLane(s, id, info, cfg)
	s.lanes[id] = l
	if s.down {
		l.goLocal()
	}
	return l
}
