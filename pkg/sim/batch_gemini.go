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

// Gemini Batch Mode with inline requests: models/{model}:batchGenerateContent returns a long-running
// operation (batches/{id}) polled until done; its response carries the inlined responses in order.

const (
	geminiBatchType  = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
	geminiOutputType = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
	// maxGeminiBatchBody bounds an inline creation body when sim.batch.max_bytes does not.
	maxGeminiBatchBody = 64 << 20
)

func (s *Server) serveGeminiBatch(w http.ResponseWriter, r *http.Request, hint, path string) {
	now := s.now()
	st := s.batches
	switch {
	case strings.HasSuffix(path, ":batchGenerateContent"):
		if r.Method != http.MethodPost {
			methodNotAllowed(w, apiGemini, now)
			return
		}
		model := strings.TrimSuffix(strings.TrimPrefix(path, "/v1beta/models/"), ":batchGenerateContent")
		s.createGeminiBatch(w, r, hint, model, now)
	case path == "/v1beta/batches" && r.Method == http.MethodGet:
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("pageSize"))
		items, ops, more := s.listPage(apiGemini, q.Get("pageToken"), limit, now,
			func(b *simBatch) map[string]any { return s.geminiOperation(b, now) })
		list := map[string]any{"operations": ops}
		if more {
			list["nextPageToken"] = items[len(items)-1].id
		}
		writeJSON(w, http.StatusOK, mustJSON(list))
	case strings.HasPrefix(path, "/v1beta/batches/"):
		name := strings.TrimPrefix(path, "/v1beta/")
		name, cancel := strings.CutSuffix(name, ":cancel")
		if (cancel && r.Method != http.MethodPost) || (!cancel && r.Method != http.MethodGet) {
			methodNotAllowed(w, apiGemini, now)
			return
		}
		st.mu.Lock()
		s.settle(st, now)
		b := st.byID[name]
		if b == nil || b.a != apiGemini {
			st.mu.Unlock()
			writeError(w, apiGemini, errBatchNotFound(apiGemini, name), now, true)
			return
		}
		if cancel {
			if !b.ended && b.canceled.IsZero() {
				b.canceled = now
			}
			st.mu.Unlock()
			writeJSON(w, http.StatusOK, []byte("{}"))
			return
		}
		st.mu.Unlock()
		// Building the response reads only ended, immutable state, so it runs unlocked.
		s.writeGeminiOperation(w, b, now)
	default:
		methodNotAllowed(w, apiGemini, now)
	}
}

func (s *Server) createGeminiBatch(w http.ResponseWriter, r *http.Request, hint, model string, now time.Time) {
	type inlined struct {
		Request  json.RawMessage `json:"request"`
		Metadata struct {
			Key string `json:"key"`
		} `json:"metadata"`
	}
	type reqs struct {
		Requests struct {
			Requests []inlined `json:"requests"`
		} `json:"requests"`
	}
	var body struct {
		Batch struct {
			DisplayName      string `json:"displayName"`
			DisplayNameSnake string `json:"display_name"`
			InputConfig      *reqs  `json:"inputConfig"`
			InputConfigSnake *reqs  `json:"input_config"`
		} `json:"batch"`
	}
	cr := &countingReader{r: io.LimitReader(r.Body, maxGeminiBatchBody+1)}
	if err := json.NewDecoder(cr).Decode(&body); err != nil {
		writeError(w, apiGemini, errBadRequest("Invalid JSON payload received. "+err.Error()), now, true)
		return
	}
	in := body.Batch.InputConfig
	if in == nil {
		in = body.Batch.InputConfigSnake
	}
	name := body.Batch.DisplayName
	if name == "" {
		name = body.Batch.DisplayNameSnake
	}
	if in == nil || name == "" {
		writeError(w, apiGemini, errBadRequest("batch.display_name and batch.input_config.requests are required"), now, true)
		return
	}
	b := &simBatch{id: s.nextID("batches/"), a: apiGemini, created: now, model: model, meta: map[string]string{"displayName": name}}
	for i, q := range in.Requests.Requests {
		key := q.Metadata.Key
		if key == "" {
			key = strconv.Itoa(i)
		}
		c, err := parseGemini(model, q.Request)
		b.lines = append(b.lines, s.parseLine(key, c, err, hint, apiGemini))
	}
	s.enqueue(w, b, cr.n, now, func() any { return s.geminiOperation(b, now) })
}

// geminiState is the batch's BatchState at now.
func (b *simBatch) geminiState(now time.Time) string {
	switch {
	case !b.ended && !b.canceled.IsZero():
		return "BATCH_STATE_RUNNING"
	case !b.ended && now.Equal(b.created):
		return "BATCH_STATE_PENDING"
	case !b.ended:
		return "BATCH_STATE_RUNNING"
	case b.failure != nil:
		return "BATCH_STATE_FAILED"
	case !b.canceled.IsZero() && !b.expired:
		return "BATCH_STATE_CANCELLED"
	case b.expired:
		return "BATCH_STATE_EXPIRED"
	}
	return "BATCH_STATE_SUCCEEDED"
}

// geminiOperation is b as an Operation without its inlined responses. Callers hold the store lock.
func (s *Server) geminiOperation(b *simBatch, now time.Time) map[string]any {
	c := b.counts(now)
	meta := map[string]any{"@type": geminiBatchType, "name": b.id, "model": "models/" + b.model,
		"displayName": b.meta["displayName"], "createTime": rfc3339(b.created), "updateTime": rfc3339(now),
		"state": b.geminiState(now),
	}
	if !b.ended {
		meta["batchStats"] = map[string]string{"requestCount": strconv.Itoa(c.total),
			"pendingRequestCount": strconv.Itoa(c.total - c.done)}
	} else {
		meta["endTime"] = rfc3339(b.endedAt)
		meta["batchStats"] = map[string]string{"requestCount": strconv.Itoa(c.total), "pendingRequestCount": "0",
			"successfulRequestCount": strconv.Itoa(c.ok), "failedRequestCount": strconv.Itoa(c.total - c.ok)}
	}
	op := map[string]any{"name": b.id, "metadata": meta}
	if b.ended {
		op["done"] = true
	}
	return op
}

// writeGeminiOperation writes the Operation of b, with the inlined responses once it has ended,
// streaming them so a large batch is not built in memory first.
func (s *Server) writeGeminiOperation(w http.ResponseWriter, b *simBatch, now time.Time) {
	s.batches.mu.Lock()
	op := s.geminiOperation(b, now)
	ended := b.ended // once true, b's outcomes no longer change
	s.batches.mu.Unlock()
	if !ended {
		writeJSON(w, http.StatusOK, mustJSON(op))
		return
	}
	head := mustJSON(op)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.Write(head[:len(head)-1]) // without the closing brace
	if b.failure != nil {
		_, _ = bw.WriteString(`,"error":`)
		_, _ = bw.Write(mustJSON(map[string]any{"code": 8, "message": b.failure.msg}))
		_, _ = bw.WriteString("}")
		_ = bw.Flush()
		return
	}
	_, _ = bw.WriteString(`,"response":{"@type":"` + geminiOutputType + `","inlinedResponses":{"inlinedResponses":[`)
	for i := range b.lines {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		ln, o := &b.lines[i], b.outcomes[i]
		item := map[string]any{"metadata": map[string]string{"key": ln.customID}}
		switch o {
		case lineOK:
			item["response"] = json.RawMessage(s.answer(apiGemini, ln, b.endedAt))
		case lineInvalid:
			item["error"] = map[string]any{"code": 3, "message": ln.invalid.msg}
		case lineErrored:
			item["error"] = map[string]any{"code": 13, "message": errServer(apiGemini).msg}
		case lineExpired:
			item["error"] = map[string]any{"code": 4, "message": "The request could not be processed before the batch expired."}
		case lineCanceled:
			item["error"] = map[string]any{"code": 1, "message": "The batch was cancelled before the request was processed."}
		}
		_, _ = bw.Write(mustJSON(item))
	}
	_, _ = bw.WriteString("]}}}")
	_ = bw.Flush()
}
