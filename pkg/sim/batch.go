package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
)

// Batch endpoints. A batch is accepted whole at creation, each line parsed and checked like a
// realtime request (the same answers, the same 400s); its lines then finish evenly over the
// provider's sim.batch.turnaround: line i of n at created + turnaround·(i+1)/n. When the batch ends
// (turnaround, the completion window, or a cancel), each line is settled once: answered, errored
// (sim.batch.errored, drawn per batch id and custom_id), expired (sim.batch.expired, or unfinished at
// the window) or canceled (unfinished at the cancel). Batch lines are not rate limited: provider batch
// queues sit outside the realtime limits; instead sim.batch.enqueued_tokens caps, per model, the
// tokens (prompt + max_tokens) of unfinished batches. The endpoints:
//
//	OpenAI     POST /v1/files (multipart, purpose=batch)      GET /v1/files/{id}/content
//	           POST /v1/batches   GET /v1/batches[?after=&limit=]   GET /v1/batches/{id}   POST /v1/batches/{id}/cancel
//	Anthropic  POST /v1/messages/batches   GET /v1/messages/batches[?after_id=&limit=]
//	           GET /v1/messages/batches/{id}   GET /v1/messages/batches/{id}/results   POST /v1/messages/batches/{id}/cancel
//	Gemini     POST /v1beta/models/{model}:batchGenerateContent (inline requests)
//	           GET /v1beta/batches[?pageSize=&pageToken=]   GET /v1beta/batches/{id}   POST /v1beta/batches/{id}:cancel

// Line outcomes, settled once when a batch ends.
const (
	lineOK byte = iota
	lineInvalid
	lineErrored
	lineExpired
	lineCanceled
)

// batchLine is one accepted line, kept compact (no request text) so a 50,000-line job stays small.
type batchLine struct {
	customID string
	lane     *lane
	sum      [sha256.Size]byte
	prompt   int
	maxOut   int
	invalid  *apiError // a per-line 400 (bad body, unknown model, context or max_tokens)
}

// simBatch is one provider batch job.
type simBatch struct {
	id       string
	a        api
	p        *simProvider // whose sim.batch applies; nil when no line routes
	created  time.Time
	meta     map[string]string // OpenAI metadata; Gemini displayName under "displayName"
	model    string            // Gemini: the model of the path
	lines    []batchLine
	inputID  string // OpenAI input file
	failure  *apiError
	canceled time.Time // zero = not canceled
	tokens   map[*lane]int64

	ended    bool
	endedAt  time.Time
	outcomes []byte // per line, once ended
	expired  bool   // ended at the completion window
}

// batchStore holds the batches and uploaded files of one Server.
type batchStore struct {
	mu      sync.Mutex
	batches []*simBatch          // creation order
	byID    map[string]*simBatch // id → batch
	files   map[string]*batchFile
	live    map[liveKey]int // (lane, digest) → lines in unfinished batches
}

type liveKey struct {
	l   *lane
	sum [sha256.Size]byte
}

// batchFile is an uploaded OpenAI input file, parsed at upload.
type batchFile struct {
	id      string
	name    string
	bytes   int64
	created time.Time
	lines   []batchLine
	bad     *apiError // the first malformed line, which fails any batch made from the file
}

func newBatchStore() *batchStore {
	return &batchStore{byID: map[string]*simBatch{}, files: map[string]*batchFile{}, live: map[liveKey]int{}}
}

// simBatchConf returns the provider's sim.batch (zero value when absent) with the window defaulted.
func simBatchConf(p *simProvider) config.SimBatch {
	var c config.SimBatch
	if p != nil && p.sim.Batch != nil {
		c = *p.sim.Batch
	}
	if c.Window == 0 {
		c.Window = config.Duration(24 * time.Hour)
	}
	return c
}

// endTime is when b ends by itself (turnaround or window), ignoring cancels.
func (b *simBatch) endTime() (time.Time, bool) {
	c := simBatchConf(b.p)
	if c.Turnaround > c.Window {
		return b.created.Add(c.Window.D()), true
	}
	return b.created.Add(c.Turnaround.D()), false
}

// lineDone is when line i finishes processing.
func (b *simBatch) lineDone(i int) time.Time {
	c := simBatchConf(b.p)
	n := int64(len(b.lines))
	return b.created.Add(time.Duration(int64(c.Turnaround) * int64(i+1) / n))
}

// draw is a uniform value in [0,1) from the batch id and a custom_id: a resubmitted line draws afresh.
func draw(batchID, customID string) float64 {
	h := fnv.New64a()
	h.Write([]byte(batchID))
	h.Write([]byte{0})
	h.Write([]byte(customID))
	// FNV's high bits barely change between ids like r1, r2: a splitmix64 finaliser spreads them.
	x := h.Sum64()
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// settle ends every batch whose time has come, counting its answers once. Callers hold st.mu.
func (s *Server) settle(st *batchStore, now time.Time) {
	for _, b := range st.batches {
		if b.ended {
			continue
		}
		end, windowed := b.endTime()
		switch {
		case b.failure != nil:
			end = b.created
		case !b.canceled.IsZero() && b.canceled.Before(end):
			end, windowed = b.canceled, false
		}
		if now.Before(end) {
			continue
		}
		b.ended, b.endedAt, b.expired = true, end, windowed
		if b.failure != nil {
			continue // never enqueued
		}
		c := simBatchConf(b.p)
		b.outcomes = make([]byte, len(b.lines))
		for i := range b.lines {
			ln := &b.lines[i]
			u := draw(b.id, ln.customID)
			var o byte
			switch {
			case ln.invalid != nil:
				o = lineInvalid
			case b.lineDone(i).After(end) && !b.canceled.IsZero() && !windowed:
				o = lineCanceled
			case b.lineDone(i).After(end):
				o = lineExpired
			case u < c.Errored:
				o = lineErrored
			case u < c.Errored+c.Expired:
				o = lineExpired
			}
			b.outcomes[i] = o
			if ln.lane == nil {
				continue
			}
			k := liveKey{ln.lane, ln.sum}
			if st.live[k]--; st.live[k] <= 0 {
				delete(st.live, k)
			}
			ln.lane.mu.Lock()
			switch o {
			case lineOK:
				ln.lane.stats.BatchOK++
				ln.lane.stats.InputTokens += ln.prompt
				ln.lane.stats.OutputTokens += answerLenCapped(ln.sum, ln.maxOut)
			case lineInvalid:
				ln.lane.stats.Invalid++
			default:
				ln.lane.stats.BatchFailed++
			}
			ln.lane.mu.Unlock()
		}
	}
}

func answerLenCapped(sum [sha256.Size]byte, maxOut int) int {
	n := answerLen(sum)
	if maxOut > 0 && maxOut < n {
		return maxOut
	}
	return n
}

// enqueued returns the tokens of unfinished batches per lane. Callers hold st.mu and have settled.
func (st *batchStore) enqueued() map[*lane]int64 {
	out := map[*lane]int64{}
	for _, b := range st.batches {
		if !b.ended {
			for l, n := range b.tokens {
				out[l] += n
			}
		}
	}
	return out
}

// admit records a new batch: it checks the per-job caps and the enqueued-token limit, then counts its
// lines. It returns the error that refuses the batch, or nil. Callers hold st.mu and have settled.
func (s *Server) admit(st *batchStore, b *simBatch, size int64) *apiError {
	for i := range b.lines {
		if b.lines[i].lane != nil {
			b.p = b.lines[i].lane.p
			break
		}
	}
	c := simBatchConf(b.p)
	if c.MaxRequests > 0 && len(b.lines) > c.MaxRequests {
		return errBatchTooLarge(b.a, strconv.Itoa(len(b.lines))+" requests", strconv.Itoa(c.MaxRequests)+" requests")
	}
	if c.MaxBytes > 0 && size > int64(c.MaxBytes) {
		return errBatchTooLarge(b.a, strconv.FormatInt(size, 10)+" bytes", strconv.FormatInt(int64(c.MaxBytes), 10)+" bytes")
	}
	if len(b.lines) == 0 {
		return errBadRequest("the batch has no requests")
	}
	b.tokens = map[*lane]int64{}
	for i := range b.lines {
		if ln := &b.lines[i]; ln.lane != nil && ln.invalid == nil {
			b.tokens[ln.lane] += int64(ln.prompt + ln.maxOut)
		}
	}
	if c.EnqueuedTokens > 0 {
		have := st.enqueued()
		for l, n := range b.tokens {
			if have[l]+n > c.EnqueuedTokens {
				return errEnqueued(b.a, l.model.Name, c.EnqueuedTokens, have[l], n)
			}
		}
	}
	for i := range b.lines {
		ln := &b.lines[i]
		if ln.lane == nil {
			continue
		}
		k := liveKey{ln.lane, ln.sum}
		dup := st.live[k] > 0
		st.live[k]++
		ln.lane.mu.Lock()
		ln.lane.stats.BatchLines++
		if dup {
			ln.lane.stats.BatchDuplicateLive++
		}
		ln.lane.mu.Unlock()
	}
	return nil
}

// add stores b. Callers hold st.mu.
func (st *batchStore) add(b *simBatch) {
	st.batches = append(st.batches, b)
	st.byID[b.id] = b
}

// counts are a batch's line counts at now: finished (answered or errored so far), and per outcome once ended.
type counts struct {
	total, done, ok, errored, expired, canceled int
}

func (b *simBatch) counts(now time.Time) counts {
	c := counts{total: len(b.lines)}
	if b.ended {
		for _, o := range b.outcomes {
			switch o {
			case lineOK:
				c.ok++
			case lineInvalid, lineErrored:
				c.errored++
			case lineExpired:
				c.expired++
			case lineCanceled:
				c.canceled++
			}
		}
		c.done = c.ok + c.errored
		return c
	}
	if b.failure != nil {
		return c
	}
	// Lines finish in order: binary search for how many are done by now.
	c.done = sort.Search(len(b.lines), func(i int) bool { return b.lineDone(i).After(now) })
	return c
}

// parseLine turns one request (already decoded for api a) into a compact line, routing its model.
func (s *Server) parseLine(customID string, c *call, err error, hint string, a api) batchLine {
	ln := batchLine{customID: customID}
	if err != nil {
		ln.invalid = errBadRequest(err.Error())
		return ln
	}
	l := s.route(c.model, hint, a)
	if l == nil {
		ln.invalid = errNotFound(a, c.model)
		return ln
	}
	ln.lane = l
	m := l.model
	ln.prompt = PromptTokens(c.texts)
	switch {
	case m.MaxOutputTokens > 0 && c.maxTokens > m.MaxOutputTokens:
		ln.invalid = errMaxTokens(a, m.Name, c.maxTokens, m.MaxOutputTokens)
	case m.ContextWindow > 0 && ln.prompt+c.maxTokens > m.ContextWindow:
		ln.invalid = errContext(a, m.Name, m.ContextWindow, ln.prompt, c.maxTokens)
	}
	ln.maxOut = c.maxTokens
	if ln.maxOut == 0 {
		ln.maxOut = m.MaxOutputTokens
	}
	ln.sum = digest(c.texts)
	return ln
}

// answer is the success body of line ln in API a: exactly the realtime answer.
func (s *Server) answer(a api, ln *batchLine, now time.Time) []byte {
	text, out, cut := reply(ln.sum, ln.maxOut)
	id := "sim" + strconv.FormatUint(s.seq.Add(1), 16)
	res := success{id: id, model: ln.lane.model.Name, created: now.Unix(), text: text, prompt: ln.prompt, out: out, capped: cut}
	return res.body(a)
}

// Batch errors.

func errBatchTooLarge(a api, got, limit string) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, msg: "batch too large: " + got + " exceeds the limit of " + limit,
		oaCode: "batch_too_large", anType: "request_too_large", gCode: "INVALID_ARGUMENT", gStatus: http.StatusBadRequest}
}

func errEnqueued(a api, model string, limit, have, want int64) *apiError {
	msg := "Enqueued token limit reached for " + model + " in organization org-sim. Limit: " +
		strconv.FormatInt(limit, 10) + " enqueued tokens (" + strconv.FormatInt(have, 10) + " enqueued, this batch " +
		strconv.FormatInt(want, 10) + "). Please try submitting fewer tokens or wait until your existing batches complete."
	return &apiError{status: http.StatusTooManyRequests, msg: msg, oaType: "invalid_request_error", oaCode: "token_limit_exceeded",
		anType: "rate_limit_error", gCode: "RESOURCE_EXHAUSTED"}
}

func errBatchNotFound(a api, id string) *apiError {
	return &apiError{status: http.StatusNotFound, msg: "No batch found with id '" + id + "'.", anType: "not_found_error", gCode: "NOT_FOUND"}
}

// lineError is the error a failed line reports in its dialect, with the HTTP status it stands for.
func lineError(a api, ln *batchLine, o byte) (*apiError, int) {
	switch o {
	case lineInvalid:
		return ln.invalid, ln.invalid.statusFor(a)
	case lineErrored:
		e := errServer(a)
		return e, e.statusFor(a)
	}
	return nil, 0
}

// serveBatch answers the batch endpoints; it reports false for any other path.
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request, hint, path string) bool {
	switch {
	case path == "/v1/files" || strings.HasPrefix(path, "/v1/files/") ||
		path == "/v1/batches" || strings.HasPrefix(path, "/v1/batches/"):
		s.serveOpenAIBatch(w, r, hint, path)
	case path == "/v1/messages/batches" || strings.HasPrefix(path, "/v1/messages/batches/"):
		s.serveAnthropicBatch(w, r, hint, path)
	case strings.HasSuffix(path, ":batchGenerateContent") || path == "/v1beta/batches" || strings.HasPrefix(path, "/v1beta/batches/"):
		s.serveGeminiBatch(w, r, hint, path)
	default:
		return false
	}
	return true
}

// nextID returns a fresh id with prefix.
func (s *Server) nextID(prefix string) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.seq.Add(1))
	return prefix + strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 36) + "sim"
}

// page returns the slice of items (newest first) after the cursor id and at most limit long, and
// whether more follow.
// enqueue admits batch b of size n into the store (the dialect's error if its limits refuse it, as
// Anthropic and Gemini answer at creation) and answers with object, rendered under the store's lock.
func (s *Server) enqueue(w http.ResponseWriter, b *simBatch, n int64, now time.Time, object func() any) {
	st := s.batches
	st.mu.Lock()
	defer st.mu.Unlock()
	s.settle(st, now)
	if e := s.admit(st, b, n); e != nil {
		writeError(w, b.a, e, now, true)
		return
	}
	st.add(b)
	writeJSON(w, http.StatusOK, mustJSON(object()))
}

// listPage settles the batch store and returns one page (newest first, after the batch id after) of
// dialect a's batches, each rendered by object under the store's lock, and whether more follow.
func (s *Server) listPage(a api, after string, limit int, now time.Time, object func(*simBatch) map[string]any) ([]*simBatch, []map[string]any, bool) {
	st := s.batches
	st.mu.Lock()
	defer st.mu.Unlock()
	s.settle(st, now)
	var mine []*simBatch
	for _, b := range st.batches {
		if b.a == a {
			mine = append(mine, b)
		}
	}
	items, more := page(mine, after, limit)
	data := make([]map[string]any, len(items))
	for i, b := range items {
		data[i] = object(b)
	}
	return items, data, more
}

func page(bs []*simBatch, after string, limit int) ([]*simBatch, bool) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	out := make([]*simBatch, 0, limit)
	started := after == ""
	for i := len(bs) - 1; i >= 0; i-- {
		if !started {
			started = bs[i].id == after
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, bs[i])
	}
	return out, false
}

func methodNotAllowed(w http.ResponseWriter, a api, now time.Time) {
	writeError(w, a, &apiError{status: http.StatusMethodNotAllowed, gCode: "INVALID_ARGUMENT", msg: "method not allowed"}, now, true)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
