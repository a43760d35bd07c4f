package batch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/batchplan"
	"github.com/llmbatch/llmbatch/pkg/batchrun"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/progress"
	"github.com/llmbatch/llmbatch/pkg/provider/adapters"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/results"
	"github.com/llmbatch/llmbatch/pkg/retry"
	"github.com/llmbatch/llmbatch/pkg/sim"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

// Routes of `run --via`.
const (
	ViaRealtime = batchplan.ViaRealtime // every prompt through the realtime APIs (the default)
	ViaBatch    = batchplan.ViaBatch    // prompts of lanes whose provider has batch enabled go as provider batch jobs
	ViaAuto     = batchplan.ViaAuto     // batch where the provider's expected turnaround fits --deadline (or always without one)
)

// batchRoute sends the prompts of batch-enabled lanes as provider batch jobs (pkg/batchrun), one
// runner per lane, journaled in OUT.jsonl.batches. Its answers join the realtime ones in the output
// with via "batch", the job's batch_id and the batch price.
type batchRoute struct {
	e     *engine
	j     *batchjournal.Journal
	live  map[string]*batchLane // prompt id → lane of the live chunk holding it (from the journal)
	lanes map[*target]*batchLane
	fed   chan struct{} // closed once the producer has read the whole input
	wg    sync.WaitGroup
	// hist is the turnaround of this machine's earlier jobs (histPath's and this journal's); the
	// jobs this run watches end are added to histPath when it ends.
	hist     *batchplan.History
	histPath string
	// input is the input file, read again at each pending prompt's offset (see pendingPrompt).
	input     *request.Rereader
	inputName string
	closeIn   func() error

	mu  sync.Mutex
	err error // first runner failure
}

// batchLane is one lane's runner and the prompts it still owes a result.
type batchLane struct {
	r        *batchRoute
	l        *target
	client   batchapi.Client
	discount float64
	decision batchplan.Decision // the lane's route under --via (auto: decided once, at the start)
	in       chan batchrun.Prompt

	mu      sync.Mutex
	pending map[string]*pendingPrompt
	arrived chan struct{}              // closed and replaced whenever a prompt is added
	written chan struct{}              // closed once the last result handed to the writer is written; nil = none
	states  map[string]batchapi.Status // last logged state of each live job (when no display draws)
}

// pendingPrompt is what a lane keeps of a prompt until its result arrives: what the result line
// needs and where the prompt sits in the input. The request itself is read again from the input
// (request.Rereader) when a chunk is uploaded or a failed line is sent again, so a lane's memory does
// not grow with its prompts' text (a 200,000-prompt job would otherwise hold every request).
type pendingPrompt struct {
	id       string
	hash     [sha256.Size]byte // request_hash, decoded: half the size of its hex
	metadata json.RawMessage
	line     int
	off      int64
	est      float64 // budget reservation (worst case at the batch price)
	tokens   int64   // what it counts against the enqueued-token limit (prompt estimate + max tokens)
	sent     int64   // when it was handed to the lane, Unix nanoseconds (smaller than a time.Time)
}

// requestHash is p's request_hash as result lines carry it.
func (p *pendingPrompt) requestHash() string { return hex.EncodeToString(p.hash[:]) }

// batchEnabled reports whether p may take batch jobs.
func batchEnabled(p *config.Provider) bool { return p.Batch != nil && p.Batch.Enabled }

// newBatchRoute opens the journal and starts a runner for every batch-enabled lane (each first
// resumes its live chunks). It returns nil for --via realtime.
func newBatchRoute(e *engine, o *Options, in *request.Input) (*batchRoute, error) {
	if o.Via == "" || o.Via == ViaRealtime {
		return nil, nil
	}
	if o.Output == "-" {
		return nil, usageErr(errors.New("--via batch needs an output file (its journal lives next to it): pass -o FILE"))
	}
	path := batchjournal.Path(o.Output)
	if o.Fresh {
		if _, err := os.Stat(path); err == nil {
			if err := os.Rename(path, path+".old"); err != nil {
				return nil, usageErr(fmt.Errorf("--fresh: %w", err))
			}
		}
	}
	j, st, err := batchjournal.Open(path, o.Now)
	if err != nil {
		return nil, usageErr(err)
	}
	histPath := batchplan.HistoryPath(o.Getenv)
	hist, err := batchplan.Load(histPath, "")
	if err != nil {
		// The history only refines the expected turnaround: without it the config's stands.
		e.log.Warn("batch turnaround history not read; using the configured turnaround", "error", err)
		hist = batchplan.NewHistory()
	}
	for _, s := range batchplan.Samples(st) {
		hist.Add(s)
	}
	f, err := in.Open()
	if err != nil {
		_ = j.Close()
		return nil, err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		_ = f.Close()
		_ = j.Close()
		return nil, fmt.Errorf("batch route: input %s cannot be read at an offset", in.Name())
	}
	r := &batchRoute{e: e, j: j, live: map[string]*batchLane{}, lanes: map[*target]*batchLane{}, fed: make(chan struct{}),
		hist: hist, histPath: histPath, input: request.NewRereader(ra, in.Name()), inputName: in.Name(), closeIn: f.Close}
	clients := map[string]batchapi.Client{}
	for _, l := range e.targets {
		p, _ := o.Config.Lookup(l.prov.name, l.sel.Name)
		if p == nil || !batchEnabled(p) {
			continue
		}
		c := clients[p.Name]
		if c == nil {
			var rt http.RoundTripper
			if o.Transport != nil {
				rt = o.Transport(p)
			}
			if rt == nil && p.Type == config.TypeSim {
				rt = sim.NewProvider(p, sim.Options{Now: o.Now}).Transport()
			}
			if c, err = batchapi.New(p, batchapi.Options{Client: adapters.NewHTTPClient(4, rt), Getenv: o.Getenv, Now: o.Now}); err != nil {
				_ = f.Close()
				_ = j.Close()
				return nil, usageErr(err)
			}
			clients[p.Name] = c
		}
		dec := batchplan.Decide(o.Via, p, o.Select.Deadline, hist.Turnaround(p))
		e.log.Debug("batch route", "lane", l.name(), "route", string(dec.Route), "why", dec.Reason)
		r.lanes[l] = &batchLane{r: r, l: l, client: c, discount: p.Batch.DiscountOrDefault(), decision: dec,
			in: make(chan batchrun.Prompt), pending: map[string]*pendingPrompt{}, arrived: make(chan struct{})}
	}
	for _, c := range st.Live() {
		for l, bl := range r.lanes {
			if l.prov.name == c.Provider && l.sel.Name == c.Model {
				for _, id := range c.IDs {
					r.live[id] = bl
				}
			}
		}
	}
	return r, nil
}

// wants returns the batch lane that takes j, or nil when j goes realtime. A prompt sitting in a live
// chunk always goes back to that chunk's lane, so it is never in two live jobs.
func (r *batchRoute) wants(j *job) *batchLane {
	if bl := r.live[j.req.ID]; bl != nil {
		return bl
	}
	if j.planErr != nil || len(j.targets) == 0 {
		return nil
	}
	bl := r.lanes[j.targets[0]]
	if bl == nil || bl.decision.Route != batchplan.Batch {
		return nil
	}
	return bl
}

// start launches the lane runners; they end when the producer closes their input and their jobs
// are downloaded, or when ctx ends (the provider jobs then stay live for the next run).
func (r *batchRoute) start(ctx context.Context) {
	for _, bl := range r.lanes {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := bl.run(ctx); err != nil && ctx.Err() == nil {
				r.mu.Lock()
				if r.err == nil {
					r.err = err
				}
				r.mu.Unlock()
				r.e.log.Error("batch route failed", "lane", bl.l.name(), "error", err)
				r.e.halt(err)
			}
		}()
	}
}

// add hands j's prompt to its batch lane, reserving its worst-case batch cost in the budget.
func (r *batchRoute) add(ctx context.Context, bl *batchLane, j *job) error {
	l := bl.l
	in, _ := j.item.Input(l.sel)
	est := tokens.Cost(l.cfg, max(in, j.charEstimate), j.expectedOutput(l)) * (1 - bl.discount)
	if err := r.e.budget.reserve(ctx, est); err != nil {
		if errors.Is(err, errBudget) {
			r.e.leaveForBudget(l, est)
		}
		return err
	}
	p := &pendingPrompt{id: j.req.ID, metadata: j.req.Metadata, line: j.req.Line, off: j.req.Offset, est: est,
		tokens: int64(j.admitTokens(l, in)), sent: r.e.now().UnixNano()}
	h, err := hex.DecodeString(j.req.Hash)
	if err != nil || len(h) != len(p.hash) {
		return fmt.Errorf("batch route: prompt %q: request hash %q is not a hex sha256", j.req.ID, j.req.Hash)
	}
	copy(p.hash[:], h)
	bl.mu.Lock()
	bl.pending[j.req.ID] = p
	close(bl.arrived)
	bl.arrived = make(chan struct{})
	bl.mu.Unlock()
	select {
	case bl.in <- batchrun.Prompt{ID: j.req.ID, Request: j.providerRequest(l), Tokens: p.tokens}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// inputDone tells the runners that no more prompts come.
func (r *batchRoute) inputDone() {
	close(r.fed)
	for _, bl := range r.lanes {
		close(bl.in)
	}
}

// wait waits for the runners, closes the journal and adds the turnaround of the jobs this run
// watched end to the machine's history (a failure there only loses a hint: it is logged).
func (r *batchRoute) wait() error {
	r.wg.Wait()
	if err := r.hist.AppendFile(r.histPath, batchplan.Samples(r.j.State())); err != nil {
		r.e.log.Warn("batch turnaround history not updated", "error", err)
	}
	_ = r.closeIn() // read-only: nothing to lose
	if err := r.j.Close(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (bl *batchLane) run(ctx context.Context) error {
	p, _ := bl.r.e.opts.Config.Lookup(bl.l.prov.name, bl.l.sel.Name)
	o := batchrun.Options{Journal: bl.r.j, Client: bl.client, Provider: bl.l.prov.name, Model: bl.l.sel.Name,
		Caps: batchapi.Caps{MaxRequests: p.Batch.MaxRequests, MaxBytes: int64(p.Batch.MaxBytes)},
		Poll: batchapi.PollPolicy{First: p.Batch.Poll.D()}, Jobs: batchplan.LaneJobs,
		// A failed line goes out again in a new job as often as the retry policy allows attempts.
		MaxRounds: bl.r.e.opts.Config.RetryFor(p).MaxAttempts,
		Lookup: func(id string) (batchrun.Prompt, error) {
			pp := bl.get(ctx, id)
			if pp == nil {
				return batchrun.Prompt{}, fmt.Errorf("prompt %q is in a batch job but not in the input", id)
			}
			req, err := bl.r.reread(pp)
			if err != nil {
				return batchrun.Prompt{}, err
			}
			return batchrun.Prompt{ID: id, Request: providerRequest(req, bl.l), Tokens: pp.tokens}, nil
		},
		OnResult: bl.deliver(ctx),
		OnPoll:   bl.showJob,
		Flush: func(ctx context.Context) error {
			bl.mu.Lock()
			w := bl.written
			bl.mu.Unlock()
			if w == nil {
				return nil
			}
			// The writer takes results in order, so the last one written means all were.
			select {
			case <-w:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	if limit := p.Batch.EnqueuedTokens[bl.l.sel.Name]; limit > 0 {
		o.Caps.MaxTokens = limit
		o.Gate = batchapi.NewGate(limit)
	}
	return batchrun.Run(ctx, o, func(yield func(batchrun.Prompt) error) error {
		for {
			select {
			case p, ok := <-bl.in:
				if !ok {
					return nil
				}
				if err := yield(p); err != nil {
					return err
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
}

// reread reads a pending prompt's request again from the input and checks that it is the one that
// was read first (same id and request hash), so a changed input never sends another prompt under
// this id.
func (r *batchRoute) reread(p *pendingPrompt) (*request.Request, error) {
	req, err := r.input.Read(p.off, p.line)
	if err != nil {
		return nil, fmt.Errorf("batch route: read prompt %q again: %w", p.id, err)
	}
	if req.ID != p.id || req.Hash != p.requestHash() {
		return nil, fmt.Errorf("batch route: %s:%d: the input changed during the run (prompt %q is not what was read first); run the same command again", r.inputName, p.line, p.id)
	}
	return req, nil
}

// showJob puts a polled job's state, counts and age in the progress display; without a drawn
// display (no terminal, --progress never) each new state of a job is an info log line instead, so
// an unattended run still says what its jobs are doing.
func (bl *batchLane) showJob(chunk string, j *batchapi.Job) {
	if d := bl.r.e.display; d != nil && d.Enabled() {
		d.Job(progress.Job{Key: chunk, Lane: bl.l.name(), ID: j.ID, State: string(j.Status), Ended: j.Status.Ended(),
			Total: j.Total, Done: j.Done, Failed: j.Failed, Created: j.CreatedAt})
		return
	}
	bl.mu.Lock()
	if bl.states == nil {
		bl.states = map[string]batchapi.Status{}
	}
	changed := bl.states[chunk] != j.Status
	bl.states[chunk] = j.Status
	if j.Status.Ended() {
		delete(bl.states, chunk)
	}
	bl.mu.Unlock()
	if changed {
		bl.r.e.log.Info("batch job", "chunk", chunk, "lane", bl.l.name(), "batch_id", j.ID, "state", string(j.Status),
			"done", j.Done, "total", j.Total, "failed", j.Failed)
	}
}

// get returns the pending prompt of id, waiting for the producer to reach it when a resumed job
// answers before the input got there; nil once the whole input was read without it.
func (bl *batchLane) get(ctx context.Context, id string) *pendingPrompt {
	for {
		bl.mu.Lock()
		p, arrived := bl.pending[id], bl.arrived
		bl.mu.Unlock()
		if p != nil {
			return p
		}
		select {
		case <-arrived:
		case <-bl.r.fed:
			bl.mu.Lock()
			p = bl.pending[id]
			bl.mu.Unlock()
			return p
		case <-ctx.Done():
			return nil
		}
	}
}

// deliver turns each line of a downloaded job into a result line.
func (bl *batchLane) deliver(ctx context.Context) func(string, batchapi.Result, *batchapi.Job) error {
	return func(id string, res batchapi.Result, job *batchapi.Job) error {
		p := bl.get(ctx, id)
		if p == nil {
			// Answered in the output already (or no longer in the input): nothing to write.
			return nil
		}
		bl.mu.Lock()
		delete(bl.pending, id)
		bl.mu.Unlock()
		l, e := bl.l, bl.r.e
		sent := time.Unix(0, p.sent)
		var r *results.Result
		if res.Outcome == batchapi.LineOK {
			u := res.Response.Usage
			cost := batchapi.Cost(l.cfg, u.InputTokens, u.OutputTokens, bl.discount)
			e.budget.settle(p.est, cost)
			r = &results.Result{CustomID: p.id, Status: results.StatusOK, Provider: l.prov.name, Model: l.sel.Name,
				Content: res.Response.Content, ToolCalls: res.Response.ToolCalls, FinishReason: res.Response.FinishReason,
				Usage: &u, CostUSD: cost, Attempts: 1, LatencyMS: e.now().Sub(sent).Milliseconds(),
				RequestHash: p.requestHash(), RequestID: res.Response.RequestID, Metadata: p.metadata,
				Via: ViaBatch, BatchID: job.ID, StartedAt: results.Timestamp(sent), FinishedAt: results.Timestamp(e.now())}
		} else {
			e.budget.settle(p.est, 0)
			c := retry.Classify(res.Err)
			r = &results.Result{CustomID: p.id, Status: results.StatusError, Provider: l.prov.name, Model: l.sel.Name,
				Attempts: 1, RequestHash: p.requestHash(), Metadata: p.metadata, Via: ViaBatch, BatchID: job.ID,
				Error:     &results.ErrorInfo{Type: string(c.Type), Message: c.Message, StatusCode: c.StatusCode},
				StartedAt: results.Timestamp(sent), FinishedAt: results.Timestamp(e.now())}
		}
		if e.cache != nil && r.Status == results.StatusOK {
			// A batch answer is as good as a realtime one. The cache keys on the request, which the
			// lane did not keep: read it again (a changed input only loses this cache entry).
			if req, err := bl.r.reread(p); err == nil {
				e.cache.Store(req, r)
			}
		}
		written := make(chan struct{})
		e.acks.Store(r, written)
		bl.mu.Lock()
		bl.written = written
		bl.mu.Unlock()
		select {
		case e.results <- finishedPrompt{r: r}:
			return nil
		case <-ctx.Done():
			e.acks.Delete(r)
			return ctx.Err()
		}
	}
}
