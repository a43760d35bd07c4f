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

	"github.com/llmbatch/llmbatch/pkg/batchjournal"
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

// TestRunViaBatchRetriedChunksCountTheirTokens: failed lines planned again in a new job are read
// again from the input with their token cost, so every chunk of the journal, retries included,
// counts against the enqueued-token limit (a retry chunk of 0 tokens could overfill it).
func TestRunViaBatchRetriedChunksCountTheirTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := strings.Replace(batchConfig("anthropic", "{turnaround: 10m, errored: 0.2, enqueued_tokens: 20000}"),
			"turnaround: 24h}", "turnaround: 24h, enqueued_tokens: {m: 20000}}", 1)
		s := newSimRun(t, cfg, 200, 40)
		s.runOK("--via", "batch")
		st, err := batchjournal.Read(batchjournal.Path(s.output))
		if err != nil {
			t.Fatal(err)
		}
		planned := map[string]int{}
		for _, c := range st.Chunks {
			if c.Tokens <= 0 || c.Tokens > 20000 {
				t.Errorf("chunk %s of %d prompts counts %d tokens", c.ID, len(c.IDs), c.Tokens)
			}
			for _, id := range c.IDs {
				planned[id]++
			}
		}
		retried := 0
		for _, n := range planned {
			if n > 1 {
				retried++
			}
		}
		if retried == 0 {
			t.Errorf("no prompt was planned twice: the test needs failed lines sent again")
		}
		if sst := s.stats("sb/m"); sst.BatchOK != 200 || sst.BatchDuplicateLive != 0 {
			t.Errorf("sim stats %+v", sst)
		}
	})
}
