package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestRunViaBatchRereadsPromptsFromStdin: the batch route keeps no prompt text in memory but reads
// each prompt again from the input when its chunk is uploaded and when a failed line goes out
// again; from stdin (spooled to a file), with a BOM, CRLF line ends and blank lines, every answer
// still belongs to its own prompt (the simulator's answers carry a digest of the prompt's text).
func TestRunViaBatchRereadsPromptsFromStdin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, batchConfig("gemini", "{turnaround: 5m, errored: 0.1, expired: 0.05}"), 300, 60)
		data, err := os.ReadFile(s.input)
		if err != nil {
			t.Fatal(err)
		}
		var in bytes.Buffer
		in.WriteString("\xEF\xBB\xBF")
		for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			in.WriteString(line + "\r\n")
			if i%7 == 0 {
				in.WriteString("\r\n  \n")
			}
		}
		f := s.factory(nil)
		f.IO.In = &in
		if code := Execute(t.Context(), f, []string{"run", "-", "-c", s.cfgPath, "-o", s.output, "--via", "batch", "--quiet"}); code != ExitOK {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		s.allOK()
		if st := s.stats("sb/m"); st.BatchOK != 300 || st.BatchFailed == 0 || st.BatchDuplicateLive != 0 {
			t.Errorf("sim stats %+v: want failed lines sent again and all 300 answered once", st)
		}
	})
}

// TestRunViaBatchNoticesAChangedInput: a prompt read again for a new job after its line failed is
// checked against the request hash read first; an input rewritten during the run stops the batch
// route with an error naming the input, and no changed prompt is ever sent under an old id.
func TestRunViaBatchNoticesAChangedInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimRun(t, batchConfig("openai", "{turnaround: 10m, errored: 0.5}"), 100, 40)
		done := make(chan int)
		go func() {
			done <- s.exec(nil, "run", s.input, "-c", s.cfgPath, "-o", s.output, "--via", "batch", "--quiet")
		}()
		time.Sleep(5 * time.Minute) // the first job is running
		ids := make([]string, 0, len(s.prompts))
		for id := range s.prompts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var in bytes.Buffer
		for _, id := range ids {
			line, _ := json.Marshal(map[string]any{"id": id, "prompt": "changed " + s.prompts[id], "max_tokens": 50})
			in.Write(append(line, '\n'))
		}
		if err := os.WriteFile(s.input, in.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if code := <-done; code == ExitOK || !strings.Contains(s.stderr.String(), "the input changed during the run") ||
			!strings.Contains(s.stderr.String(), s.input) {
			t.Fatalf("exit %d: %s", code, s.stderr.String())
		}
		// Every ok line answers the original text of its prompt (lines() checks the digests).
		ok := 0
		for _, r := range s.lines() {
			if r.Status == "ok" {
				ok++
			}
		}
		if st := s.stats("sb/m"); st.BatchLines != 100 || ok == 0 {
			t.Errorf("sim stats %+v, %d ok lines: want only the first job's 100 lines sent", st, ok)
		}
	})
}
