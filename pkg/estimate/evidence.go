package estimate

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// Evidence is what earlier results say about each lane: how long its answers were (overall, and
// for prompts of the batch being estimated, as a share of their max_tokens) and how long its
// requests took. Build it with ReadResults before the batch is planned, then call Match for every
// prompt of the batch. A nil *Evidence holds nothing.
type Evidence struct {
	source Source
	files  []string
	lines  int // ok results read
	byID   map[string]observation
	lanes  map[laneKey]*laneEvidence
}

type laneKey struct{ provider, model string }

type observation struct {
	lane    laneKey
	hash    string // the request_hash the answer was for
	out     int
	latency time.Duration // 0 when not measured
}

type laneEvidence struct {
	n        int   // ok results
	out      int64 // their output tokens
	latency  time.Duration
	latencyN int
	// prompts of the batch being estimated that these results answered, with their max_tokens
	matched                    int
	matchedOut, matchedReserve int64
}

// resultLine is the part of a result line (DESIGN §3) the evidence uses.
type resultLine struct {
	CustomID string `json:"custom_id"`
	Status   string `json:"status"`
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Usage    *struct {
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
	LatencyMS   int64  `json:"latency_ms"`
	Cached      bool   `json:"cached"` // a cached answer took no time at the provider
	RequestHash string `json:"request_hash"`
}

// NewEvidence returns empty evidence whose results will count as coming from source.
func NewEvidence(source Source) *Evidence {
	return &Evidence{source: source, byID: map[string]observation{}, lanes: map[laneKey]*laneEvidence{}}
}

// ReadFile adds the ok results of a results file (llmbatch's default format) to the evidence. A file
// that does not exist adds nothing and is no error when missingOK (a job's output before its first
// run). Lines that are not result lines are errors naming the file and line; a torn last line (a
// crash while writing) is ignored, as a resumed run would repair it. For an id present more than
// once the last line counts, as it does on resume.
func (ev *Evidence) ReadFile(path string, missingOK bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && missingOK {
		return nil
	}
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	defer f.Close()
	ev.files = append(ev.files, path)
	return ev.read(f, path)
}

func (ev *Evidence) read(r io.Reader, name string) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		torn := err == io.EOF && len(line) > 0
		if len(line) > 0 && !torn {
			var rl resultLine
			if jerr := json.Unmarshal(line, &rl); jerr != nil || rl.CustomID == "" || rl.Status == "" {
				return fmt.Errorf("%s:%d: not an llmbatch result line (want custom_id and status, as run writes "+
					"them without --format openai)", name, lineNo)
			}
			ev.add(rl)
		}
		if err == io.EOF {
			return nil
		}
	}
}

func (ev *Evidence) add(rl resultLine) {
	if old, ok := ev.byID[rl.CustomID]; ok { // a later line supersedes an earlier one
		le := ev.lanes[old.lane]
		le.n--
		le.out -= int64(old.out)
		if old.latency > 0 {
			le.latency -= old.latency
			le.latencyN--
		}
		delete(ev.byID, rl.CustomID)
		ev.lines--
	}
	if rl.Status != "ok" || rl.Usage == nil || rl.Provider == "" || rl.Model == "" {
		return
	}
	k := laneKey{rl.Provider, rl.Model}
	le := ev.lanes[k]
	if le == nil {
		le = &laneEvidence{}
		ev.lanes[k] = le
	}
	le.n++
	le.out += int64(rl.Usage.OutputTokens)
	o := observation{lane: k, hash: rl.RequestHash, out: rl.Usage.OutputTokens}
	if rl.LatencyMS > 0 && !rl.Cached {
		o.latency = time.Duration(rl.LatencyMS) * time.Millisecond
		le.latency += o.latency
		le.latencyN++
	}
	ev.byID[rl.CustomID] = o
	ev.lines++
}

// Match records that the batch being estimated has a prompt id that may use reserve output tokens:
// when an earlier result answered it, that answer's share of reserve counts for its model. Call it
// once per prompt, before Estimate.
func (ev *Evidence) Match(id string, reserve int) {
	if ev == nil || reserve <= 0 {
		return
	}
	o, ok := ev.byID[id]
	if !ok {
		return
	}
	le := ev.lanes[o.lane]
	le.matched++
	le.matchedOut += int64(o.out)
	le.matchedReserve += int64(reserve)
}

// MeanOutput is the mean output tokens of the lane's earlier results, 0 when it has none.
func (ev *Evidence) MeanOutput(provider, model string) float64 {
	le := ev.lane(provider, model)
	if le == nil || le.n == 0 {
		return 0
	}
	return float64(le.out) / float64(le.n)
}

// Results is how many ok results the evidence holds, and Files the files they came from.
func (ev *Evidence) Results() int {
	if ev == nil {
		return 0
	}
	return ev.lines
}

// Files lists the files read, in order.
func (ev *Evidence) Files() []string {
	if ev == nil {
		return nil
	}
	return ev.files
}

// Source is where the evidence comes from.
func (ev *Evidence) Source() Source {
	if ev == nil {
		return FromTypical
	}
	return ev.source
}

func (ev *Evidence) lane(provider, model string) *laneEvidence {
	if ev == nil {
		return nil
	}
	return ev.lanes[laneKey{provider, model}]
}

// Has reports whether the evidence holds results of the lane.
func (ev *Evidence) Has(provider, model string) bool {
	le := ev.lane(provider, model)
	return le != nil && le.n > 0
}

// First returns the first of evs (best first) that holds results of the lane, nil when none does.
func First(evs []*Evidence, provider, model string) *Evidence {
	for _, ev := range evs {
		if ev.Has(provider, model) {
			return ev
		}
	}
	return nil
}

// HasID reports whether the evidence holds an ok result for the prompt id.
func (ev *Evidence) HasID(id string) bool {
	if ev == nil {
		return false
	}
	_, ok := ev.byID[id]
	return ok
}

// Done reports whether the evidence's last line for id is an ok answer to the request of hash
// hash: a prompt a resumed run skips (results.Checkpoint.Done decides alike).
func (ev *Evidence) Done(id, hash string) bool {
	if ev == nil {
		return false
	}
	o, ok := ev.byID[id]
	return ok && o.hash == hash
}

// Only drops every result whose id keep rejects (a sample's evidence keeps the sampled prompts).
func (ev *Evidence) Only(keep func(id string) bool) {
	for id := range ev.byID {
		if !keep(id) {
			ev.add(resultLine{CustomID: id}) // removes it, like a superseding line that is no ok result
		}
	}
}
