package shared

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmbatch/llmbatch/pkg/ratelimit"
)

// Overview is the live shared state on one Redis, for `llmbatch limits`.
type Overview struct {
	Redis     string      `json:"redis"` // the URL, password masked
	Time      time.Time   `json:"time"`  // the server's clock, which every shared decision uses
	Processes []Process   `json:"processes"`
	Lanes     []LaneState `json:"lanes"`
	Jobs      []JobBudget `json:"jobs"`
}

// Process is one llmbatch process whose heartbeat is current (seen in the last 15 s).
type Process struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Job     string    `json:"job,omitempty"`
	Lanes   int       `json:"lanes"`
	Started time.Time `json:"started"`
}

// LaneState is one shared lane: who it is, its limits and where they come from, its use.
type LaneState struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Provider string `json:"provider"`
	BaseURL  string `json:"base_url"`
	Model    string `json:"model"`
	Key      string `json:"key_sha256_prefix,omitempty"`

	Configured ratelimit.Limits  `json:"configured"` // as the last process to admit configured them
	Limits     ratelimit.Limits  `json:"limits"`     // in force: learned from headers or adapted, else configured
	Source     ratelimit.Sources `json:"source"`

	// WindowRequests and WindowTokens were admitted in the last 60 s or are reserved for the next
	// slots (the requests waiting for them are counted already).
	WindowRequests int       `json:"window_requests"`
	WindowTokens   int       `json:"window_tokens"`
	DayRequests    int       `json:"day_requests"`
	DayTokens      int       `json:"day_tokens"`
	DayExhausted   bool      `json:"day_exhausted"`
	DayResetAt     time.Time `json:"day_reset_at"`
	RateLimited    int       `json:"rate_limited"` // 429s reported by all processes
	PausedUntil    time.Time `json:"paused_until,omitzero"`
	BreakerOpen    time.Time `json:"breaker_open_until,omitzero"`
	Processes      int       `json:"processes"` // that used the lane in the last 15 s
}

// JobBudget is one job's shared --max-cost budget.
type JobBudget struct {
	Job      string  `json:"job"`
	CapUSD   float64 `json:"cap_usd"`
	SpentUSD float64 `json:"spent_usd"`
	// ReservedUSD is held by requests in flight.
	ReservedUSD float64 `json:"reserved_usd"`
}

// Inspect reads the shared state at rawURL without joining it (it registers no process). The
// password comes from the URL or getenv($LLMBATCH_REDIS_PASSWORD); errors mask it.
func Inspect(ctx context.Context, rawURL string, getenv func(string) string) (*Overview, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	opts, err := parseURL(rawURL, getenv)
	if err != nil {
		return nil, err
	}
	silenceRedisLog.Do(func() { redis.SetLogger(voidLogger()) })
	opts.DialTimeout, opts.ReadTimeout, opts.MaxRetries = dialTimeout, opTimeout, -1
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("shared: %s: %w: %v", Redact(rawURL), ErrUnreachable, scrub(err, opts.Password))
	}
	ov := &Overview{Redis: Redact(rawURL), Time: now.UTC(), Processes: []Process{}, Lanes: []LaneState{}, Jobs: []JobBudget{}}
	if ov.Processes, err = processes(ctx, rdb); err != nil {
		return nil, err
	}
	ids, err := rdb.SMembers(ctx, lanesKey).Result()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		ls, ok, err := laneState(ctx, rdb, id, now)
		if err != nil {
			return nil, err
		}
		if ok {
			ov.Lanes = append(ov.Lanes, ls)
		} else {
			continue // its state expired; a read-only command leaves the set as it is
		}
	}
	slices.SortFunc(ov.Lanes, func(a, b LaneState) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	if ov.Jobs, err = jobs(ctx, rdb); err != nil {
		return nil, err
	}
	return ov, nil
}

func processes(ctx context.Context, rdb *redis.Client) ([]Process, error) {
	out := []Process{}
	iter := rdb.Scan(ctx, 0, procPrefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		v, err := rdb.Get(ctx, key).Result()
		if err == redis.Nil {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, err
		}
		var pi procInfo
		if json.Unmarshal([]byte(v), &pi) != nil {
			continue
		}
		out = append(out, Process{ID: strings.TrimPrefix(key, procPrefix), Host: pi.Host, PID: pi.PID, Job: pi.Job,
			Lanes: pi.Lanes, Started: pi.Started})
	}
	slices.SortFunc(out, func(a, b Process) int { return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.PID, b.PID)) })
	return out, iter.Err()
}

func laneState(ctx context.Context, rdb *redis.Client, id string, now time.Time) (LaneState, bool, error) {
	keys := laneKeys(id)
	h, err := rdb.HGetAll(ctx, keys[0]).Result()
	if err != nil || len(h) == 0 {
		return LaneState{}, false, err
	}
	num := func(f string) int64 {
		v, _ := strconv.ParseFloat(h[f], 64)
		return int64(v)
	}
	ms := func(v int64) time.Time {
		if v <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(v).UTC()
	}
	nowMs := now.UnixMilli()
	ls := LaneState{ID: id, Name: h["name"], Provider: h["provider"], BaseURL: h["base"], Model: h["model"], Key: h["key"],
		Configured:  ratelimit.Limits{RPM: int(num("cfg_rpm")), TPM: int(num("cfg_tpm")), RPD: int(num("cfg_rpd")), TPD: int(num("cfg_tpd"))},
		DayRequests: int(num("day_reqs")), DayTokens: int(num("day_tok")), DayExhausted: num("day_ex") == 1,
		DayResetAt: ms(num("day_end")), RateLimited: int(num("n429"))}
	if p := num("pause"); p > nowMs {
		ls.PausedUntil = ms(p)
	}
	if b := num("brk_until"); b > nowMs {
		ls.BreakerOpen = ms(b)
	}
	if d := num("day_end"); d > 0 && d <= nowMs { // the day rolled over since anyone looked
		ls.DayRequests, ls.DayTokens, ls.DayExhausted = 0, 0, false
	}
	// Limits in force and their sources, as the script decides them (see eff in lane.lua).
	pick := func(learned, src, cfg int64) (int, ratelimit.Source) {
		if learned > 0 && src > 0 {
			return int(learned), ratelimit.Source(src)
		}
		if cfg > 0 {
			return int(cfg), ratelimit.SourceConfig
		}
		return 0, ratelimit.SourceUnknown
	}
	ls.Limits.RPM, ls.Source.RPM = pick(num("l_rpm"), num("s_rpm"), num("cfg_rpm"))
	ls.Limits.TPM, ls.Source.TPM = pick(num("l_tpm"), num("s_tpm"), num("cfg_tpm"))
	ls.Limits.RPD, ls.Source.RPD = pick(num("l_rpd"), num("s_rpd"), num("cfg_rpd"))
	ls.Limits.TPD, ls.Source.TPD = pick(0, 0, num("cfg_tpd"))
	// The window: entries after now-60 s, reserved slots included.
	ents, err := rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: keys[1], ByScore: true,
		Start: "(" + strconv.FormatInt(nowMs-60000, 10), Stop: "+inf"}).Result()
	if err != nil {
		return ls, false, err
	}
	if len(ents) > 0 {
		fields := make([]string, 0, 2*len(ents))
		for _, m := range ents {
			fields = append(fields, "r"+m, "t"+m)
		}
		vals, err := rdb.HMGet(ctx, keys[2], fields...).Result()
		if err != nil {
			return ls, false, err
		}
		for i, v := range vals {
			s, _ := v.(string)
			n, _ := strconv.Atoi(s)
			if i%2 == 0 {
				ls.WindowRequests += n
			} else {
				ls.WindowTokens += n
			}
		}
	}
	procs, err := rdb.ZCount(ctx, keys[3], strconv.FormatInt(nowMs-procTTL.Milliseconds(), 10), "+inf").Result()
	if err != nil {
		return ls, false, err
	}
	ls.Processes = int(procs)
	return ls, true, nil
}

func jobs(ctx context.Context, rdb *redis.Client) ([]JobBudget, error) {
	out := []JobBudget{}
	iter := rdb.Scan(ctx, 0, prefix+"job:*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		h, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(key, prefix+"job:{"), "}:budget")
		jb := JobBudget{Job: name}
		var reserved int64
		for f, v := range h {
			n, _ := strconv.ParseInt(v, 10, 64)
			switch {
			case f == "cap":
				jb.CapUSD = float64(n) / 1e9
			case f == "spent":
				jb.SpentUSD = float64(n) / 1e9
			case strings.HasPrefix(f, "r:"):
				reserved += n
			}
		}
		jb.ReservedUSD = float64(reserved) / 1e9
		out = append(out, jb)
	}
	slices.SortFunc(out, func(a, b JobBudget) int { return cmp.Compare(a.Job, b.Job) })
	return out, iter.Err()
}
