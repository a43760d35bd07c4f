// Package batchjournal is the durable journal of a job's provider batch jobs (OUT.jsonl.batches, next
// to the output). Every step is recorded, fsynced, before the next one starts: chunk planned (with
// its prompt ids) → file uploaded → batch created → ended → results downloaded; a cancel is recorded
// before it is sent, and so is every submission. Replaying the journal after a crash tells which chunks are live, so a rerun
// never submits a prompt that sits in a live provider job: it finds the job again (Find, through
// the provider's list and the job tag each provider job carries), polls it and downloads it.
package batchjournal

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Op is the kind of a record.
type Op string

// Record kinds, in the order a chunk goes through them.
const (
	OpJob        Op = "job"        // first record: the job tag every provider job carries
	OpPlanned    Op = "planned"    // a chunk's prompt ids, before anything is sent
	OpSubmitting Op = "submitting" // the upload / creation request is about to be sent
	OpUploaded   Op = "uploaded"   // the input file exists on the provider (OpenAI)
	OpCreated    Op = "created"    // the provider job exists
	OpEnded      Op = "ended"      // the provider job has ended (its status)
	OpDownloaded Op = "downloaded" // its results are in the output: the chunk is done
	OpCancel     Op = "cancel"     // a cancel is about to be sent
	OpAbandoned  Op = "abandoned"  // the chunk was never created (or failed) and its prompts are free again
)

// Record is one journal line.
type Record struct {
	Op       Op        `json:"op"`
	At       time.Time `json:"at"`
	Job      string    `json:"job,omitempty"`   // OpJob
	Chunk    string    `json:"chunk,omitempty"` // every op but OpJob
	Provider string    `json:"provider,omitempty"`
	Model    string    `json:"model,omitempty"`
	IDs      []string  `json:"ids,omitempty"` // OpPlanned: prompt ids in chunk order
	Tokens   int64     `json:"tokens,omitempty"`
	Bytes    int64     `json:"bytes,omitempty"`
	FileID   string    `json:"file_id,omitempty"`  // OpUploaded
	BatchID  string    `json:"batch_id,omitempty"` // OpCreated
	Status   string    `json:"status,omitempty"`   // OpEnded
	// Watched (OpEnded) says this process polled the job while it ran and saw it end, so the time
	// from OpCreated to this record is the job's turnaround (not a restart's delay).
	Watched bool   `json:"watched,omitempty"`
	OK      int    `json:"ok,omitempty"`     // OpDownloaded
	Failed  int    `json:"failed,omitempty"` // OpDownloaded
	Reason  string `json:"reason,omitempty"` // OpAbandoned
}

// Chunk is the replayed state of one chunk.
type Chunk struct {
	ID, Provider, Model string
	IDs                 []string
	Tokens, Bytes       int64
	PlannedAt           time.Time
	SubmittedAt         time.Time // when OpSubmitting was recorded; zero = never sent
	FileID, BatchID     string
	Status              string    // the provider status recorded at OpEnded
	CreatedAt           time.Time // when OpCreated was recorded; zero = not yet
	EndedAt             time.Time // when OpEnded was recorded; zero = not yet
	// Took is the job's turnaround, OpCreated to OpEnded, when the process that recorded the end
	// watched the job run (Record.Watched); zero otherwise.
	Took            time.Duration
	CancelRequested bool
	Done            bool // downloaded or abandoned: its prompts are no longer in a live job
}

// Live reports whether the chunk's prompts may sit in a provider job that has not been downloaded.
func (c *Chunk) Live() bool { return !c.Done }

// State is the replayed journal.
type State struct {
	Job    string   // the job tag
	Chunks []*Chunk // in planning order
	byID   map[string]*Chunk
}

// Chunk returns the chunk with that id, or nil.
func (s *State) Chunk(id string) *Chunk { return s.byID[id] }

// Live returns the chunks that are not done, in planning order.
func (s *State) Live() []*Chunk {
	var out []*Chunk
	for _, c := range s.Chunks {
		if c.Live() {
			out = append(out, c)
		}
	}
	return out
}

// LiveIDs returns the prompt ids of live chunks, each mapped to its chunk id: prompts a rerun must
// not submit again.
func (s *State) LiveIDs() map[string]string {
	out := map[string]string{}
	for _, c := range s.Live() {
		for _, id := range c.IDs {
			out[id] = c.ID
		}
	}
	return out
}

// apply folds one record into the state; an unknown chunk in a later op is an error.
func (s *State) apply(r *Record) error {
	if r.Op == OpJob {
		s.Job = r.Job
		return nil
	}
	if r.Op == OpPlanned {
		if s.byID[r.Chunk] != nil {
			return fmt.Errorf("chunk %s planned twice", r.Chunk)
		}
		c := &Chunk{ID: r.Chunk, Provider: r.Provider, Model: r.Model, IDs: r.IDs, Tokens: r.Tokens, Bytes: r.Bytes, PlannedAt: r.At}
		s.Chunks = append(s.Chunks, c)
		s.byID[c.ID] = c
		return nil
	}
	c := s.byID[r.Chunk]
	if c == nil {
		return fmt.Errorf("%s of chunk %q, which was never planned", r.Op, r.Chunk)
	}
	switch r.Op {
	case OpSubmitting:
		c.SubmittedAt = r.At
	case OpUploaded:
		c.FileID = r.FileID
	case OpCreated:
		c.BatchID = r.BatchID
		c.CreatedAt = r.At
	case OpEnded:
		c.Status, c.EndedAt = r.Status, r.At
		if r.Watched && !c.CreatedAt.IsZero() && r.At.After(c.CreatedAt) {
			c.Took = r.At.Sub(c.CreatedAt)
		}
	case OpCancel:
		c.CancelRequested = true
	case OpDownloaded, OpAbandoned:
		c.Done = true
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	return nil
}

// errPlannedTwice refuses a second OpPlanned of one chunk id.
var errPlannedTwice = errors.New("planned twice")

// Journal appends records to the file; it is safe for concurrent use.
type Journal struct {
	path string
	now  func() time.Time

	mu    sync.Mutex
	f     *os.File
	state *State

	// untagged serialises submissions to providers whose jobs carry no tag (Anthropic), so at most
	// one chunk of the journal is ever submitted but not yet recorded as created: Find can then
	// tell which job is whose.
	untagged sync.Mutex
}

// Path returns the journal path of an output file: OUT.jsonl.batches.
func Path(output string) string { return output + ".batches" }

// Open replays the journal at path (creating it, with a fresh job tag, when missing) and returns it
// ready for appends with its state. A torn last line (a crash mid-write) is cut off; any other bad
// line is an error naming the file and line. now stamps the records (time.Now when nil).
func Open(path string, now func() time.Time) (*Journal, *State, error) {
	if now == nil {
		now = time.Now
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("batch journal: %w", err)
	}
	st, good, err := replay(path, f)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if err := f.Truncate(good); err != nil { // drop a torn tail, if any
		_ = f.Close()
		return nil, nil, fmt.Errorf("batch journal %s: repair: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("batch journal %s: %w", path, err)
	}
	j := &Journal{path: path, now: now, f: f, state: st}
	if st.Job == "" {
		tag, err := newTag()
		if err != nil {
			_ = f.Close()
			return nil, nil, err
		}
		if err := j.Append(Record{Op: OpJob, Job: tag}); err != nil {
			_ = f.Close()
			return nil, nil, err
		}
	}
	return j, st, nil
}

// Read replays the journal at path without opening it for appends (a torn last line is ignored, not
// cut off): the state of another run's journal, or of one no run holds. A missing file is an error
// satisfying errors.Is(err, fs.ErrNotExist).
func Read(path string) (*State, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("batch journal: %w", err)
	}
	defer f.Close()
	st, _, err := replay(path, f)
	return st, err
}

// replay reads every complete line; it returns the state and the offset after the last good line.
func replay(path string, f *os.File) (*State, int64, error) {
	st := &State{byID: map[string]*Chunk{}}
	br := bufio.NewReaderSize(f, 1<<20)
	var off int64
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// No newline: a torn write from a crash; everything before it stands.
			return st, off, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("batch journal %s: %w", path, err)
		}
		var r Record
		if len(bytes.TrimSpace(line)) > 0 {
			if err := json.Unmarshal(line, &r); err != nil {
				return nil, 0, fmt.Errorf("batch journal %s:%d: %v (the file is written only by llmbatch; move it aside to start the batches over)", path, n, err)
			}
			if err := st.apply(&r); err != nil {
				return nil, 0, fmt.Errorf("batch journal %s:%d: %v", path, n, err)
			}
		}
		off += int64(len(line))
	}
}

// newTag is a fresh job tag: "lb" and 12 random hex digits, short enough for any provider's metadata.
func newTag() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("batch journal: job tag: %w", err)
	}
	return "lb" + hex.EncodeToString(b[:]), nil
}

// State returns the live state (updated by every Append). Callers must not modify it.
func (j *Journal) State() *State {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state
}

// Append stamps r, writes it as one line in one write, fsyncs, and folds it into the state. A record
// that does not fit the state (an op on an unknown chunk) is refused before it is written.
func (j *Journal) Append(r Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if r.At.IsZero() {
		r.At = j.now().UTC()
	}
	switch {
	case r.Op == OpPlanned && j.state.byID[r.Chunk] != nil:
		return fmt.Errorf("batch journal: chunk %q: %w", r.Chunk, errPlannedTwice)
	case r.Op != OpJob && r.Op != OpPlanned && j.state.byID[r.Chunk] == nil:
		return fmt.Errorf("batch journal: %s of unknown chunk %q", r.Op, r.Chunk)
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return fmt.Errorf("batch journal: %w", err)
	}
	b = append(b, '\n')
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("batch journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("batch journal %s: fsync: %w", j.path, err)
	}
	return j.state.apply(&r)
}

// Plan appends an OpPlanned record for a new chunk, its id assigned here ("c1", "c2", … in
// journal order, so lanes sharing the journal never collide), and returns the chunk.
func (j *Journal) Plan(r Record) (*Chunk, error) {
	j.mu.Lock()
	r.Chunk = "c" + strconv.Itoa(len(j.state.Chunks)+1)
	j.mu.Unlock()
	r.Op = OpPlanned
	// Append re-checks under the lock; a concurrent Plan that took the same id makes this one fail
	// rather than write a duplicate, so retry with the next id.
	for {
		err := j.Append(r)
		if err == nil {
			return j.State().Chunk(r.Chunk), nil
		}
		if !errors.Is(err, errPlannedTwice) {
			return nil, err
		}
		j.mu.Lock()
		r.Chunk = "c" + strconv.Itoa(len(j.state.Chunks)+1)
		j.mu.Unlock()
	}
}

// Close closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
