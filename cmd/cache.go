package cmd

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/llmbatch/llmbatch/pkg/cache"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// CacheFlags are the response-cache flags of run and estimate.
type CacheFlags struct {
	Mode    string        // on | off | read | always
	MaxSize string        // size cap, e.g. 2GiB ("" = the default)
	TTL     time.Duration // 0 = entries never expire
}

func (c *CacheFlags) register(fl *pflag.FlagSet, dryRun bool) {
	if dryRun {
		fl.StringVar(&c.Mode, "cache", "", "count prompts the response cache answers at no cost, `on|off|read|always` (default on, else $LLMBATCH_CACHE); always also counts sampled requests")
	} else {
		fl.StringVar(&c.Mode, "cache", "", "response cache, `on|off|read|always` (default on, else $LLMBATCH_CACHE): on leaves out sampled requests (temperature > 0, no seed), read never writes")
		fl.StringVar(&c.MaxSize, "cache-max-size", "", "size cap of the response cache; the least recently used answers go first (default 1GiB)")
	}
	fl.DurationVar(&c.TTL, "cache-ttl", 0, "cached answers older than this are not used (default: no expiry)")
}

// options parses the flags; without --cache the mode comes from $LLMBATCH_CACHE, else on.
func (c *CacheFlags) options(getenv func(string) string, now func() time.Time) (cache.Mode, cache.Options, error) {
	mode := c.Mode
	if mode == "" && getenv != nil {
		if env := getenv("LLMBATCH_CACHE"); env != "" {
			m, err := cache.ParseMode(env)
			if err != nil {
				return m, cache.Options{}, fmt.Errorf("$LLMBATCH_CACHE=%q: want on, off, read or always", env)
			}
			mode = env
		}
	}
	m, err := cache.ParseMode(mode)
	if err != nil {
		return m, cache.Options{}, err
	}
	o, err := cacheOptions(c.MaxSize, c.TTL, now)
	return m, o, err
}

func cacheOptions(maxSize string, ttl time.Duration, now func() time.Time) (cache.Options, error) {
	o := cache.Options{TTL: ttl, Now: now}
	if ttl < 0 {
		return o, fmt.Errorf("--cache-ttl %s must not be negative", ttl)
	}
	if maxSize != "" {
		n, err := humanize.ParseBytes(maxSize)
		if err != nil || n == 0 {
			return o, fmt.Errorf("--cache-max-size %q: want a size such as 500MB or 2GiB", maxSize)
		}
		o.MaxBytes = int64(n)
	}
	return o, nil
}

// cachePath is the cache database under $XDG_CACHE_HOME/llmbatch (else ~/.cache/llmbatch).
func cachePath(getenv func(string) string) (string, error) {
	dir, err := cache.Dir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, cache.FileName), nil
}

// cacheWarning is how run and estimate report a response cache they cannot use.
const cacheWarning = "the response cache is unusable and is bypassed; `llmbatch cache clear` starts a new one"

// openCacheSource opens the response cache for a run or an estimate over lanes ("provider/model",
// those --model and --provider leave, by preference). It returns nil when the cache is off or,
// after warn, when it cannot be used: a broken cache never stops a run. Without XDG_CACHE_HOME and
// HOME there is no cache.
func openCacheSource(getenv func(string) string, mode cache.Mode, o cache.Options, lanes []string, warn func(error)) *cache.Source {
	if mode == cache.ModeOff {
		return nil
	}
	path, err := cachePath(getenv)
	if err != nil {
		return nil // no home directory (a sandbox): there is no cache to use, nothing is wrong
	}
	store, err := cache.Open(path, o)
	if err != nil {
		warn(err)
		return nil
	}
	return cache.NewSource(store, mode, lanes, o.Now, warn)
}

// pinnedLanes names the lanes --model and --provider leave, as "provider/model".
func pinnedLanes(lanes []*selector.Lane, sel selector.Options) []string {
	var names []string
	for _, l := range selector.Pinned(lanes, sel.PinModel, sel.PinProvider) {
		names = append(names, l.Provider+"/"+l.Name)
	}
	return names
}

// NewCmdCache builds `llmbatch cache stats|prune|clear`.
func NewCmdCache(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "cache stats|prune|clear",
		Short: "Inspect or trim the response cache ($XDG_CACHE_HOME/llmbatch, else ~/.cache/llmbatch)",
		Long: `The response cache keeps every answer run buys, keyed by the request hash (model pin, messages and
every parameter that changes the answer) and the lane that answered, so a later run of the same
request pays nothing. stats shows its size; prune deletes expired answers (--ttl) and the least
recently used ones past --max-size; clear deletes every answer.`,
		Example: `  llmbatch cache stats
  llmbatch cache prune --max-size 500MB --ttl 720h
  llmbatch cache clear`,
	}
	var asJSON bool
	stats := &cobra.Command{
		Use:     "stats",
		Short:   "Entries, size on disk and the cost of the stored answers",
		Example: "  llmbatch cache stats\n  llmbatch cache stats --json",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return withStore(f, cache.Options{Now: f.Now}, func(s *cache.Store) error {
				st, err := s.Stats()
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(f.IO.Out)
					enc.SetIndent("", "  ")
					return enc.Encode(st)
				}
				fmt.Fprintf(f.IO.Out, "cache      %s\nentries    %d\nstored     %s (cap %s)\non disk    %s\nbought for %s\n",
					st.Path, st.Entries, humanize.IBytes(uint64(st.Bytes)), humanize.IBytes(uint64(st.MaxBytes)),
					humanize.IBytes(uint64(st.File)), usd(st.CostUSD))
				if st.Entries > 0 {
					fmt.Fprintf(f.IO.Out, "oldest     %s\nnewest     %s\n", st.Oldest.Format(time.RFC3339), st.Newest.Format(time.RFC3339))
				}
				return nil
			})
		},
	}
	stats.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")

	var maxSize string
	var ttl time.Duration
	prune := &cobra.Command{
		Use:     "prune",
		Short:   "Delete expired answers and the least recently used ones past the size cap",
		Example: "  llmbatch cache prune --max-size 500MB\n  llmbatch cache prune --ttl 720h",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			o, err := cacheOptions(maxSize, ttl, f.Now)
			if err != nil {
				return usageErr(err)
			}
			return withStore(f, o, func(s *cache.Store) error {
				n, err := s.Prune()
				if err != nil {
					return err
				}
				fmt.Fprintf(f.IO.Out, "pruned %d entries from %s\n", n, s.Path())
				return nil
			})
		},
	}
	prune.Flags().StringVar(&maxSize, "max-size", "", "keep at most this much (e.g. 500MB; default 1GiB)")
	prune.Flags().DurationVar(&ttl, "ttl", 0, "delete answers older than this (e.g. 720h)")

	clear := &cobra.Command{
		Use:     "clear",
		Short:   "Delete every cached answer (a cache too damaged to open is removed)",
		Example: "  llmbatch cache clear",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			path, err := cachePath(f.Getenv)
			if err != nil {
				return usageErr(err)
			}
			s, err := cache.Open(path, cache.Options{Now: f.Now})
			if err != nil {
				if rerr := cache.Remove(path); rerr != nil {
					return fmt.Errorf("%w; removing it: %w", err, rerr)
				}
				fmt.Fprintf(f.IO.Out, "removed the unreadable cache %s (%v)\n", path, err)
				return nil
			}
			n, err := s.Clear()
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IO.Out, "cleared %d entries from %s\n", n, path)
			return nil
		},
	}
	c.AddCommand(stats, prune, clear)
	return c
}

// withStore opens the cache, runs fn and closes it.
func withStore(f *Factory, o cache.Options, fn func(*cache.Store) error) error {
	path, err := cachePath(f.Getenv)
	if err != nil {
		return usageErr(err)
	}
	s, err := cache.Open(path, o)
	if err != nil {
		return fmt.Errorf("%w (`llmbatch cache clear` removes a damaged cache)", err)
	}
	err = fn(s)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}
