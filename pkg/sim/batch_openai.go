package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OpenAI Batch API: input files uploaded to /v1/files with purpose=batch, batches over them, output
// and error files served from /v1/files/{id}/content.

// maxBatchLine bounds one input line (the realtime body cap).
const maxBatchLine = maxBody

func (s *Server) serveOpenAIBatch(w http.ResponseWriter, r *http.Request, hint, path string) {
	now := s.now()
	st := s.batches
	switch {
	case path == "/v1/files" && r.Method == http.MethodPost:
		s.uploadFile(w, r, hint, now)
	case strings.HasPrefix(path, "/v1/files/") && strings.HasSuffix(path, "/content") && r.Method == http.MethodGet:
		s.fileContent(w, strings.TrimSuffix(strings.TrimPrefix(path, "/v1/files/"), "/content"), now)
	case path == "/v1/batches" && r.Method == http.MethodPost:
		s.createOpenAIBatch(w, r, now)
	case path == "/v1/batches" && r.Method == http.MethodGet:
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		items, data, more := s.listPage(apiOpenAI, q.Get("after"), limit, now,
			func(b *simBatch) map[string]any { return b.openAIObject(now) })
		list := map[string]any{"object": "list", "data": data, "has_more": more, "first_id": nil, "last_id": nil}
		if len(items) > 0 {
			list["first_id"], list["last_id"] = items[0].id, items[len(items)-1].id
		}
		writeJSON(w, http.StatusOK, mustJSON(list))
	case strings.HasPrefix(path, "/v1/batches/"):
		id, action, _ := strings.Cut(strings.TrimPrefix(path, "/v1/batches/"), "/")
		if (action == "" && r.Method != http.MethodGet) || (action == "cancel" && r.Method != http.MethodPost) ||
			(action != "" && action != "cancel") {
			methodNotAllowed(w, apiOpenAI, now)
			return
		}
		st.mu.Lock()
		s.settle(st, now)
		b := st.byID[id]
		if b == nil || b.a != apiOpenAI {
			st.mu.Unlock()
			writeError(w, apiOpenAI, errBatchNotFound(apiOpenAI, id), now, true)
			return
		}
		if action == "cancel" && !b.ended && b.canceled.IsZero() {
			b.canceled = now
		}
		obj := b.openAIObject(now)
		st.mu.Unlock()
		writeJSON(w, http.StatusOK, mustJSON(obj))
	default:
		methodNotAllowed(w, apiOpenAI, now)
	}
}

// uploadFile reads a multipart upload line by line without keeping the text: each line becomes a
// compact batchLine.
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request, hint string, now time.Time) {
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, apiOpenAI, errBadRequest("expected a multipart/form-data upload: "+err.Error()), now, true)
		return
	}
	f := &batchFile{created: now}
	purpose, gotFile := "", false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, apiOpenAI, errBadRequest("reading the upload: "+err.Error()), now, true)
			return
		}
		switch part.FormName() {
		case "purpose":
			b, _ := io.ReadAll(io.LimitReader(part, 64))
			purpose = string(b)
		case "file":
			gotFile = true
			f.name = part.FileName()
			if err := s.readInputFile(part, f, hint); err != nil {
				writeError(w, apiOpenAI, errBadRequest("reading the file: "+err.Error()), now, true)
				return
			}
		}
	}
	switch {
	case purpose != "batch":
		writeError(w, apiOpenAI, errBadRequest("purpose: the simulator accepts only purpose=batch uploads, got '"+purpose+"'"), now, true)
		return
	case !gotFile:
		writeError(w, apiOpenAI, errBadRequest("file: Field required"), now, true)
		return
	}
	f.id = s.nextID("file-")
	s.batches.mu.Lock()
	s.batches.files[f.id] = f
	s.batches.mu.Unlock()
	writeJSON(w, http.StatusOK, mustJSON(map[string]any{"id": f.id, "object": "file", "bytes": f.bytes,
		"created_at": now.Unix(), "filename": f.name, "purpose": "batch", "status": "processed"}))
}

func (s *Server) readInputFile(rd io.Reader, f *batchFile, hint string) error {
	br := bufio.NewReaderSize(rd, 64<<10)
	n := 0
	for {
		line, err := readLine(br)
		f.bytes += int64(len(line))
		if len(bytes.TrimSpace(line)) > 0 {
			n++
			f.lines = append(f.lines, s.parseInputLine(line, n, hint, f))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readLine returns the next line including its newline; it fails on a line beyond maxBatchLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxBatchLine {
			return nil, errors.New("a line exceeds " + strconv.Itoa(maxBatchLine) + " bytes")
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}

func (s *Server) parseInputLine(line []byte, n int, hint string, f *batchFile) batchLine {
	var in struct {
		CustomID string          `json:"custom_id"`
		Method   string          `json:"method"`
		URL      string          `json:"url"`
		Body     json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(line, &in); err != nil || in.CustomID == "" {
		if f.bad == nil {
			msg := "line " + strconv.Itoa(n) + ": each line needs a custom_id, method, url and body"
			if err != nil {
				msg = "line " + strconv.Itoa(n) + ": invalid JSON: " + err.Error()
			}
			f.bad = errBadRequest(msg)
		}
		return batchLine{customID: in.CustomID, invalid: errBadRequest("invalid line")}
	}
	if in.URL != "/v1/chat/completions" && f.bad == nil {
		f.bad = errBadRequest("line " + strconv.Itoa(n) + ": url must be /v1/chat/completions, got " + in.URL)
	}
	c, err := parseOpenAI(in.Body)
	return s.parseLine(in.CustomID, c, err, hint, apiOpenAI)
}

func (s *Server) createOpenAIBatch(w http.ResponseWriter, r *http.Request, now time.Time) {
	var req struct {
		InputFileID      string            `json:"input_file_id"`
		Endpoint         string            `json:"endpoint"`
		CompletionWindow string            `json:"completion_window"`
		Metadata         map[string]string `json:"metadata"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, apiOpenAI, errBadRequest("invalid JSON body: "+err.Error()), now, true)
		return
	}
	if req.Endpoint != "/v1/chat/completions" || req.CompletionWindow != "24h" {
		writeError(w, apiOpenAI, errBadRequest("endpoint must be /v1/chat/completions and completion_window 24h"), now, true)
		return
	}
	st := s.batches
	st.mu.Lock()
	defer st.mu.Unlock()
	s.settle(st, now)
	f := st.files[req.InputFileID]
	if f == nil {
		writeError(w, apiOpenAI, &apiError{status: http.StatusNotFound, msg: "No such File object: " + req.InputFileID}, now, true)
		return
	}
	b := &simBatch{id: s.nextID("batch_"), a: apiOpenAI, created: now, meta: req.Metadata, lines: f.lines, inputID: f.id}
	if f.bad != nil {
		b.failure = f.bad
	} else if e := s.admit(st, b, f.bytes); e != nil {
		// OpenAI accepts the batch and fails it during validation (token_limit_exceeded, too large).
		b.failure = e
	}
	st.add(b)
	s.settle(st, now)
	writeJSON(w, http.StatusOK, mustJSON(b.openAIObject(now)))
}

// openAIObject is b as the Batch object at now.
func (b *simBatch) openAIObject(now time.Time) map[string]any {
	c := b.counts(now)
	status := "in_progress"
	ts := func(t time.Time) any { return t.Unix() }
	o := map[string]any{"id": b.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": nil,
		"input_file_id": b.inputID, "completion_window": "24h", "created_at": b.created.Unix(),
		"in_progress_at": nil, "expires_at": b.created.Add(24 * time.Hour).Unix(), "finalizing_at": nil,
		"completed_at": nil, "failed_at": nil, "expired_at": nil, "cancelling_at": nil, "cancelled_at": nil,
		"output_file_id": nil, "error_file_id": nil, "metadata": b.meta,
		"request_counts": map[string]int{"total": c.total, "completed": c.done, "failed": c.errored}}
	if b.meta == nil {
		o["metadata"] = map[string]string{}
	}
	switch {
	case b.failure != nil:
		status = "failed"
		o["failed_at"] = ts(b.created)
		o["errors"] = map[string]any{"object": "list", "data": []any{map[string]any{
			"code": b.failure.oaCode, "message": b.failure.msg, "param": nil, "line": nil}}}
		o["request_counts"] = map[string]int{"total": 0, "completed": 0, "failed": 0}
	case !b.canceled.IsZero() && !b.ended:
		status = "cancelling"
		o["cancelling_at"] = ts(b.canceled)
	case b.ended:
		o["in_progress_at"] = ts(b.created)
		switch {
		case !b.canceled.IsZero() && !b.expired:
			status = "cancelled"
			o["cancelling_at"], o["cancelled_at"] = ts(b.canceled), ts(b.endedAt)
		case b.expired:
			status = "expired"
			o["expired_at"] = ts(b.endedAt)
		default:
			status = "completed"
			o["finalizing_at"], o["completed_at"] = ts(b.endedAt), ts(b.endedAt)
		}
		o["request_counts"] = map[string]int{"total": c.total, "completed": c.ok, "failed": c.total - c.ok}
		if c.ok > 0 {
			o["output_file_id"] = "file-out-" + b.id
		}
		if c.ok < c.total {
			o["error_file_id"] = "file-err-" + b.id
		}
	default:
		o["in_progress_at"] = ts(b.created)
	}
	o["status"] = status
	return o
}

// fileContent serves an output or error file: one JSONL line per request, in input order.
func (s *Server) fileContent(w http.ResponseWriter, id string, now time.Time) {
	st := s.batches
	st.mu.Lock()
	s.settle(st, now)
	var b *simBatch
	errs := false
	if bid, ok := strings.CutPrefix(id, "file-out-"); ok {
		b = st.byID[bid]
	} else if bid, ok := strings.CutPrefix(id, "file-err-"); ok {
		b, errs = st.byID[bid], true
	}
	ready := b != nil && b.ended && b.failure == nil // once ended, b's outcomes no longer change
	st.mu.Unlock()
	if !ready {
		writeError(w, apiOpenAI, &apiError{status: http.StatusNotFound, msg: "No such File object: " + id}, now, true)
		return
	}
	w.Header().Set("Content-Type", "application/jsonl")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	for i := range b.lines {
		ln, o := &b.lines[i], b.outcomes[i]
		if (o == lineOK) == errs {
			continue
		}
		line := map[string]any{"id": "batch_req_" + strconv.Itoa(i) + "_" + b.id, "custom_id": ln.customID, "response": nil, "error": nil}
		switch o {
		case lineOK:
			line["response"] = map[string]any{"status_code": 200, "request_id": "req_" + strconv.Itoa(i), "body": json.RawMessage(s.answer(apiOpenAI, ln, b.endedAt))}
		case lineInvalid, lineErrored:
			e, status := lineError(apiOpenAI, ln, o)
			line["response"] = map[string]any{"status_code": status, "request_id": "req_" + strconv.Itoa(i), "body": json.RawMessage(errorJSON(apiOpenAI, e, status))}
		case lineExpired:
			line["error"] = map[string]any{"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}
		case lineCanceled:
			line["error"] = map[string]any{"code": "batch_cancelled", "message": "This request was not executed because the batch was cancelled."}
		}
		_, _ = bw.Write(mustJSON(line))
		_ = bw.WriteByte('\n')
	}
	_ = bw.Flush()
}
