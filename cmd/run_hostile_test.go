package cmd

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/llmbatch/llmbatch/pkg/config"
)

// hostileOnce answers the first request of every prompt with a hostile 200 body (the next one of
// bodies, in turn) in place of the simulator's answer; later attempts get the real answer.
type hostileOnce struct {
	next   http.RoundTripper
	bodies []string

	mu   sync.Mutex
	seen map[string]bool
	n    int
}

func (h *hostileOnce) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := h.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	m := promptItem.FindSubmatch(body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if m == nil || h.seen[string(m[1])] {
		return resp, nil
	}
	h.seen[string(m[1])] = true
	b := h.bodies[h.n%len(h.bodies)]
	h.n++
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return resp, nil
}

// TestRunHostileSuccessBodiesAreRetried (issue 17, row 4): a provider of each API whose first answer
// to every prompt is a 200 its API never sends — null, {}, [], another API's answer — gets each of
// those attempts recorded as invalid_response and retried; every prompt ends answered with real
// content, none as "ok" with empty content.
func TestRunHostileSuccessBodiesAreRetried(t *testing.T) {
	shapes := map[string]string{
		"openai":    `{"choices":[{"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]}`,
		"anthropic": `{"type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn"}`,
		"gemini":    `{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}]}`,
	}
	for _, api := range []string{"openai", "anthropic", "gemini"} {
		t.Run(api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				bodies := []string{`null`, `{}`, `[]`, `""`}
				for other, b := range shapes {
					if other != api {
						bodies = append(bodies, b)
					}
				}
				s := newSimRun(t, resilienceConfig(api, "faults: {}", 0), 24, 40)
				f := s.factory(nil)
				f.Transport = func(*config.Provider) http.RoundTripper {
					return &hostileOnce{next: s.srv.Transport(), bodies: bodies, seen: map[string]bool{}}
				}
				code := Execute(context.Background(), f, []string{"run", s.input, "-c", s.cfgPath, "-o", s.output, "--quiet", "-v"})
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, s.stderr.String())
				}
				for id, r := range s.allOK() {
					if r.Content == "" || r.Attempts != 2 || len(r.AttemptLog) != 2 || r.AttemptLog[0].ErrorType != "invalid_response" {
						t.Errorf("%s: %d attempts %+v, content %.20q; want invalid_response then the answer", id, r.Attempts, r.AttemptLog, r.Content)
					}
				}
			})
		})
	}
}
