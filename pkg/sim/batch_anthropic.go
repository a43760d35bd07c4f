package sim

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Anthropic Message Batches: the requests travel in the creation body; results are JSONL.

// maxAnthropicBatchBody bounds a creation body when sim.batch.max_bytes does not (256 MB, the API's cap).
const maxAnthropicBatchBody = 256 << 20

func (s *Server) serveAnthropicBatch(w http.ResponseWriter, r *http.Request, hint, path string) {
	now := s.now()
	st := s.batches
	rest := strings.TrimPrefix(strings.TrimPrefix(path, "/v1/messages/batches"), "/")
	id, action, _ := strings.Cut(rest, "/")
	switch {
	case id == "" && r.Method == http.MethodPost:
		s.createAnthropicBatch(w, r, hint, now)
	case id == "" && r.Method == http.MethodGet:
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		items, data, more := s.listPage(apiAnthropic, q.Get("after_id"), limit, now,
			func(b *simBatch) map[string]any { return b.anthropicObject(now, r) })
		list := map[string]any{"data": data, "has_more": more, "first_id": nil, "last_id": nil}
		if len(items) > 0 {
			list["first_id"], list["last_id"] = items[0].id, items[len(items)-1].id
		}
		writeJSON(w, http.StatusOK, mustJSON(list))
	case (action == "" && r.Method == http.MethodGet) || (action == "cancel" && r.Method == http.MethodPost) ||
		(action == "results" && r.Method == http.MethodGet):
		st.mu.Lock()
		s.settle(st, now)
		b := st.byID[id]
		if b == nil || b.a != apiAnthropic {
			st.mu.Unlock()
			writeError(w, apiAnthropic, errBatchNotFound(apiAnthropic, id), now, true)
			return
		}
		if action == "cancel" && !b.ended && b.canceled.IsZero() {
			b.canceled = now
		}
		obj := b.anthropicObject(now, r)
		ended := b.ended
		st.mu.Unlock()
		if action != "results" {
			writeJSON(w, http.StatusOK, mustJSON(obj))
			return
		}
		if !ended {
			writeError(w, apiAnthropic, &apiError{status: http.StatusNotFound, anType: "not_found_error",
				msg: "Batch " + id + " has not ended: results are available once processing_status is ended."}, now, true)
			return
		}
		s.anthropicResults(w, b)
	default:
		methodNotAllowed(w, apiAnthropic, now)
	}
}

func (s *Server) createAnthropicBatch(w http.ResponseWriter, r *http.Request, hint string, now time.Time) {
	limit := int64(maxAnthropicBatchBody)
	cr := &countingReader{r: io.LimitReader(r.Body, limit+1)}
	dec := json.NewDecoder(cr)
	b := &simBatch{id: s.nextID("msgbatch_"), a: apiAnthropic, created: now}
	// Walk {"requests":[...]} element by element so the body is never held whole.
	err := func() error {
		if _, err := dec.Token(); err != nil {
			return err
		}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			if key != "requests" {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
				continue
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			for dec.More() {
				var req struct {
					CustomID string          `json:"custom_id"`
					Params   json.RawMessage `json:"params"`
				}
				if err := dec.Decode(&req); err != nil {
					return err
				}
				c, perr := parseAnthropic(req.Params)
				b.lines = append(b.lines, s.parseLine(req.CustomID, c, perr, hint, apiAnthropic))
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		writeError(w, apiAnthropic, errBadRequest("invalid request body: "+err.Error()), now, true)
		return
	}
	s.enqueue(w, b, cr.n, now, func() any { return b.anthropicObject(now, r) })
}

// anthropicObject is b as the message_batch object at now.
func (b *simBatch) anthropicObject(now time.Time, r *http.Request) map[string]any {
	c := b.counts(now)
	o := map[string]any{"id": b.id, "type": "message_batch", "created_at": rfc3339(b.created),
		"expires_at": rfc3339(b.created.Add(24 * time.Hour)), "ended_at": nil, "cancel_initiated_at": nil,
		"archived_at": nil, "results_url": nil, "processing_status": "in_progress",
		"request_counts": map[string]int{"processing": c.total - c.done, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}}
	if !b.canceled.IsZero() {
		o["cancel_initiated_at"] = rfc3339(b.canceled)
		o["processing_status"] = "canceling"
	}
	if b.ended {
		o["processing_status"] = "ended"
		o["ended_at"] = rfc3339(b.endedAt)
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		o["results_url"] = scheme + "://" + r.Host + "/v1/messages/batches/" + b.id + "/results"
		o["request_counts"] = map[string]int{"processing": 0, "succeeded": c.ok, "errored": c.errored,
			"canceled": c.canceled, "expired": c.expired}
	}
	return o
}

func (s *Server) anthropicResults(w http.ResponseWriter, b *simBatch) {
	w.Header().Set("Content-Type", "application/x-jsonl")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	for i := range b.lines {
		ln, o := &b.lines[i], b.outcomes[i]
		var res map[string]any
		switch o {
		case lineOK:
			res = map[string]any{"type": "succeeded", "message": json.RawMessage(s.answer(apiAnthropic, ln, b.endedAt))}
		case lineInvalid, lineErrored:
			e, status := lineError(apiAnthropic, ln, o)
			res = map[string]any{"type": "errored", "error": json.RawMessage(errorJSON(apiAnthropic, e, status))}
		case lineExpired:
			res = map[string]any{"type": "expired"}
		case lineCanceled:
			res = map[string]any{"type": "canceled"}
		}
		_, _ = bw.Write(mustJSON(map[string]any{"custom_id": ln.customID, "result": res}))
		_ = bw.WriteByte('\n')
	}
	_ = bw.Flush()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
