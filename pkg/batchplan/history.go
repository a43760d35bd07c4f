package batchplan

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/config"
)

// Learning parameters: a provider's turnaround is learned once MinSamples of its jobs were watched
// from creation to end; the expectation is the nearest-rank Quantile of its last Window jobs, so a
// deadline decision holds for most jobs, not just the typical one, and follows a provider that got
// slower or faster.
const (
	MinSamples = 3
	Window     = 20
	Quantile   = 0.9
)

// Sample is one finished provider job's turnaround as this machine saw it.
type Sample struct {
	Provider string        `json:"provider"`
	Model    string        `json:"model,omitempty"`
	Job      string        `json:"job"`   // the journal's job tag
	Chunk    string        `json:"chunk"` // the chunk id within that journal
	Ended    time.Time     `json:"ended"`
	Took     time.Duration `json:"took_ns"`
}

func (s Sample) key() string { return s.Job + "/" + s.Chunk }

// History is the turnaround of earlier jobs, per provider. The zero value is not usable: use
// NewHistory.
type History struct {
	byProvider map[string][]Sample
	seen       map[string]bool
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{byProvider: map[string][]Sample{}, seen: map[string]bool{}}
}

// Add records s unless a sample of the same job and chunk is known already or s has no duration.
// It reports whether s was new.
func (h *History) Add(s Sample) bool {
	if s.Took <= 0 || s.Provider == "" || h.seen[s.key()] {
		return false
	}
	h.seen[s.key()] = true
	h.byProvider[s.Provider] = append(h.byProvider[s.Provider], s)
	return true
}

// Samples returns the samples a journal's state holds: its chunks whose job this machine watched
// from creation to end.
func Samples(st *batchjournal.State) []Sample {
	var out []Sample
	for _, c := range st.Chunks {
		if c.Took > 0 {
			out = append(out, Sample{Provider: c.Provider, Model: c.Model, Job: st.Job, Chunk: c.ID, Ended: c.EndedAt, Took: c.Took})
		}
	}
	return out
}

// AddJournal adds the samples of the journal at path; a missing journal adds nothing.
func (h *History) AddJournal(path string) error {
	st, err := batchjournal.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range Samples(st) {
		h.Add(s)
	}
	return nil
}

// Expected returns the provider's learned turnaround and how many jobs it rests on; ok is false
// when fewer than MinSamples are known.
func (h *History) Expected(provider string) (d time.Duration, n int, ok bool) {
	ss := h.byProvider[provider]
	if len(ss) < MinSamples {
		return 0, len(ss), false
	}
	ss = slices.Clone(ss)
	slices.SortStableFunc(ss, func(a, b Sample) int { return a.Ended.Compare(b.Ended) })
	if len(ss) > Window {
		ss = ss[len(ss)-Window:]
	}
	took := make([]time.Duration, len(ss))
	for i, s := range ss {
		took[i] = s.Took
	}
	slices.Sort(took)
	// Nearest rank: the smallest value with at least Quantile of the samples at or below it.
	rank := int(float64(len(took))*Quantile+0.999999) - 1
	return took[min(max(rank, 0), len(took)-1)], len(took), true
}

// Turnaround is provider p's expected batch turnaround: learned when the history knows enough of
// its jobs, else the config's batch.turnaround. h may be nil.
func (h *History) Turnaround(p *config.Provider) Turnaround {
	if h != nil {
		if d, n, ok := h.Expected(p.Name); ok {
			return Turnaround{Expected: d, Learned: n}
		}
	}
	if p.Batch == nil {
		return Turnaround{}
	}
	return Turnaround{Expected: p.Batch.Turnaround.D()}
}

// HistoryPath is the machine's turnaround history file: $XDG_STATE_HOME/llmbatch/batch-history.jsonl,
// else ~/.local/state/llmbatch/batch-history.jsonl; "" when neither variable is set (nothing is
// learned across jobs then).
func HistoryPath(getenv func(string) string) string {
	if getenv == nil {
		return ""
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "llmbatch", "batch-history.jsonl")
	}
	if d := getenv("HOME"); d != "" {
		return filepath.Join(d, ".local", "state", "llmbatch", "batch-history.jsonl")
	}
	return ""
}

// ReadFile adds the samples of a history file written by AppendFile; a missing file adds nothing.
// A line that is not a sample is skipped (a torn line from a crash; the file is only a hint), and
// so is a duplicate.
func (h *History) ReadFile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("batch history: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var s Sample
		if json.Unmarshal(sc.Bytes(), &s) == nil {
			h.Add(s)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("batch history %s: %w", path, err)
	}
	return nil
}

// AppendFile appends the samples h does not hold yet to the history file at path (creating its
// directory) in one write, and adds them to h. The file is append-only: concurrent runs on the
// machine each add whole lines.
func (h *History) AppendFile(path string, samples []Sample) error {
	if path == "" {
		return nil
	}
	var b []byte
	for _, s := range samples {
		if !h.Add(s) {
			continue
		}
		line, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("batch history: %w", err)
		}
		b = append(append(b, line...), '\n')
	}
	if len(b) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("batch history: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("batch history: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("batch history %s: %w", path, err)
	}
	return f.Close()
}

// Load is the history a job sees: the machine's history file (histPath, may be "") and the job's
// own journal (journalPath, may be "", e.g. for select which has no output).
func Load(histPath, journalPath string) (*History, error) {
	h := NewHistory()
	if err := h.ReadFile(histPath); err != nil {
		return nil, err
	}
	if journalPath != "" {
		if err := h.AddJournal(journalPath); err != nil {
			return nil, err
		}
	}
	return h, nil
}
