package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/sim"
)

func TestAnswersTieBackToRequests(t *testing.T) {
	srv := sim.New(oneModel(t, "        max_output_tokens: 4096", ""), sim.Options{})
	c := client(srv)
	for _, api := range apis {
		for i, max := range []int{0, 1, 5, 50, 200} {
			if api == "anthropic" && max == 0 {
				continue // max_tokens is required
			}
			texts := prompt(i*7 + len(api))
			r := mustSend(t, t.Context(), c, api, base, "m", texts, max)
			wantText, wantOut, capped := sim.Reply(texts, max)
			wantFinish := map[bool]string{false: "stop", true: "length"}[capped]
			if r.status != 200 || r.text != wantText || r.in != sim.PromptTokens(texts) || r.out != wantOut || r.finish != wantFinish {
				t.Errorf("%s max %d: status %d text %q in %d out %d finish %q; want %q in %d out %d finish %q\n%s",
					api, max, r.status, r.text, r.in, r.out, r.finish, wantText, sim.PromptTokens(texts), wantOut, wantFinish, r.body)
			}
			if !strings.HasPrefix(r.text, sim.Digest(texts)) {
				t.Errorf("%s: answer %q lacks its request's digest", api, r.text)
			}
		}
	}
	if st := srv.Stats()["p/m"]; st.Requests != 14 || st.OK != 14 || st.InputTokens == 0 || st.OutputTokens == 0 {
		t.Errorf("stats %+v", st)
	}
}

// retryWait is the wait a client of api reads from a 429: OpenAI retry-after-ms, Anthropic
// retry-after (cross-checked against the RFC 3339 reset when a request limit was hit), Gemini RetryInfo.
func retryWait(t *testing.T, api string, r *reply) time.Duration {
	t.Helper()
	switch api {
	case "openai":
		ms, err := strconv.Atoi(r.header.Get("Retry-After-Ms"))
		if err != nil {
			t.Fatalf("openai 429 without retry-after-ms: %v %s", r.header, r.body)
		}
		return time.Duration(ms) * time.Millisecond
	case "anthropic":
		s, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil {
			t.Fatalf("anthropic 429 without retry-after: %v", r.header)
		}
		return time.Duration(s) * time.Second
	}
	d, err := time.ParseDuration(r.retry)
	if err != nil {
		t.Fatalf("gemini 429 without RetryInfo: %s", r.body)
	}
	return d
}

func TestRPMHoldsUnderHammering(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const rpm, workers = 20, 8
				srv := sim.New(oneModel(t, "        rpm: 1000", "      latency: 30ms\n      limits: {m: {rpm: 20}}"), sim.Options{})
				c := client(srv)
				start := time.Now()
				var mu sync.Mutex
				var admitted []time.Time
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for i := 0; time.Since(start) < 3*time.Minute; i++ {
							sent := time.Now()
							r := mustSend(t, t.Context(), c, api, base, "m", prompt(w*1000+i), 10)
							switch r.status {
							case 200:
								mu.Lock()
								admitted = append(admitted, sent)
								mu.Unlock()
							case 429:
								time.Sleep(retryWait(t, api, r))
							default:
								t.Errorf("status %d: %s", r.status, r.body)
								return
							}
						}
					})
				}
				wg.Wait()
				st := srv.Stats()["p/m"]
				if st.MaxInWindow > rpm || st.MaxInWindow < rpm {
					t.Errorf("MaxInWindow %d, want exactly the RPM %d", st.MaxInWindow, rpm)
				}
				// Independent check from the client's side: no 60 s window holds more than RPM sends.
				for i := range admitted {
					n := 0
					for _, a := range admitted {
						if !a.Before(admitted[i]) && a.Sub(admitted[i]) < time.Minute {
							n++
						}
					}
					if n > rpm {
						t.Fatalf("%d admissions within a minute of %v", n, admitted[i].Sub(start))
					}
				}
				// Honouring retry-after keeps the lane busy: about RPM per minute over 3 minutes.
				if len(admitted) < 3*rpm || len(admitted) > 4*rpm || st.OK != len(admitted) || st.RateLimited == 0 {
					t.Errorf("admitted %d, stats %+v", len(admitted), st)
				}
			})
		})
	}
}

func TestRetryAfterIsExact(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := sim.New(oneModel(t, "        rpm: 5", ""), sim.Options{})
				c := client(srv)
				t0 := time.Now()
				for i := range 5 {
					if r := mustSend(t, t.Context(), c, api, base, "m", prompt(i), 10); r.status != 200 {
						t.Fatalf("request %d: %d %s", i, r.status, r.body)
					}
					time.Sleep(1300 * time.Millisecond)
				}
				// Now t0+6.5s; the oldest admission (t0) leaves at t0+60s: 53.5s from now.
				r := mustSend(t, t.Context(), c, api, base, "m", prompt(9), 10)
				if r.status != 429 {
					t.Fatalf("6th: %d %s", r.status, r.body)
				}
				switch api {
				case "openai":
					h := r.header
					if h.Get("Retry-After") != "54" || h.Get("Retry-After-Ms") != "53500" || h.Get("X-Ratelimit-Reset-Requests") != "53.5s" ||
						h.Get("X-Ratelimit-Remaining-Requests") != "0" || h.Get("X-Ratelimit-Limit-Requests") != "5" ||
						r.errType != "requests" || r.errCode != "rate_limit_exceeded" || !strings.Contains(r.errMsg, "try again in 53.5s") {
						t.Fatalf("openai 429: %v %s", h, r.body)
					}
				case "anthropic":
					h := r.header
					if h.Get("Retry-After") != "54" || h.Get("Anthropic-Ratelimit-Requests-Reset") != t0.Add(time.Minute).UTC().Format(time.RFC3339) ||
						h.Get("Anthropic-Ratelimit-Requests-Remaining") != "0" || r.errType != "rate_limit_error" {
						t.Fatalf("anthropic 429: %v %s", h, r.body)
					}
				case "gemini":
					if r.retry != "54s" || r.errType != "RESOURCE_EXHAUSTED" || !strings.Contains(r.errMsg, "limit: 5") {
						t.Fatalf("gemini 429: %s", r.body)
					}
				}
				wait := retryWait(t, api, r)
				if api == "openai" {
					time.Sleep(wait - time.Millisecond)
					if r := mustSend(t, t.Context(), c, api, base, "m", prompt(10), 10); r.status != 429 || r.header.Get("Retry-After-Ms") != "1" {
						t.Fatalf("1ms early: %d %v", r.status, r.header)
					}
					wait = time.Millisecond
				}
				time.Sleep(wait)
				if r := mustSend(t, t.Context(), c, api, base, "m", prompt(11), 10); r.status != 200 {
					t.Fatalf("after retry-after: %d %s", r.status, r.body)
				}
			})
		})
	}
}

func TestTPMAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := sim.New(oneModel(t, "        tpm: 2000\n        rpm: 1000", "      limits: {m: {tpm: 500}}"), sim.Options{})
		c := client(srv)
		texts := []string{"sys", "hello"}
		cost := sim.PromptTokens(texts) + 100
		for i := range 500 / cost {
			r := mustSend(t, t.Context(), c, "openai", base, "m", texts, 100)
			if r.status != 200 || r.header.Get("X-Ratelimit-Limit-Tokens") != "500" ||
				r.header.Get("X-Ratelimit-Remaining-Tokens") != strconv.Itoa(500-(i+1)*cost) ||
				r.header.Get("X-Ratelimit-Limit-Requests") != "1000" {
				t.Fatalf("request %d: %d %v", i, r.status, r.header)
			}
			time.Sleep(10 * time.Second)
		}
		r := mustSend(t, t.Context(), c, "openai", base, "m", texts, 100)
		elapsed := time.Duration(500/cost) * 10 * time.Second
		if r.status != 429 || r.errType != "tokens" || r.header.Get("X-Ratelimit-Reset-Tokens") != fmt.Sprint(time.Minute-elapsed) {
			t.Fatalf("over TPM: %d %v %s", r.status, r.header, r.body)
		}
		// A smaller request still fits in what is left.
		if r := mustSend(t, t.Context(), c, "openai", base, "m", texts, 500-(500/cost)*cost-sim.PromptTokens(texts)); r.status != 200 {
			t.Fatalf("small request: %d %s", r.status, r.body)
		}
		// One that can never fit: 429 "Request too large", no retry-after.
		r = mustSend(t, t.Context(), c, "openai", base, "m", texts, 600)
		if r.status != 429 || r.errType != "tokens" || !strings.HasPrefix(r.errMsg, "Request too large") || r.header.Get("Retry-After") != "" {
			t.Fatalf("too large: %d %v %s", r.status, r.header, r.body)
		}
		if st := srv.Stats()["p/m"]; st.RateLimited != 2 || st.OK != 500/cost+1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestRPDAcrossTheDay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := sim.New(oneModel(t, "        rpd: 2", ""), sim.Options{})
		c := client(srv)
		for i := range 2 {
			if r := mustSend(t, t.Context(), c, "openai", base, "m", prompt(i), 5); r.status != 200 {
				t.Fatal(r.status)
			}
			time.Sleep(time.Hour)
		}
		r := mustSend(t, t.Context(), c, "openai", base, "m", prompt(3), 5)
		if r.status != 429 || r.errType != "requests" || !strings.Contains(r.errMsg, "requests per day") || r.header.Get("Retry-After") != strconv.Itoa(22*3600) {
			t.Fatalf("rpd: %d %v %s", r.status, r.header, r.body)
		}
		time.Sleep(22 * time.Hour)
		if r := mustSend(t, t.Context(), c, "openai", base, "m", prompt(4), 5); r.status != 200 {
			t.Fatalf("next day: %d %s", r.status, r.body)
		}
	})
}

func TestHeadersOnSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := mustConfig(t, `
providers:
  - name: p
    type: sim
    models:
      - {name: m, rpm: 10, tpm: 10000}
      - {name: hidden, rpm: 10, tpm: 10000}
    sim:
      limits: {hidden: {hide_headers: true}}
`)
		srv := sim.New(cfg, sim.Options{})
		c := client(srv)
		now := time.Now()
		texts := prompt(1)
		cost := sim.PromptTokens(texts) + 20
		reset := now.Add(time.Minute).UTC().Format(time.RFC3339)
		for i, api := range apis {
			h := mustSend(t, t.Context(), c, api, base, "m", texts, 20).header
			var want map[string]string
			switch api {
			case "openai":
				want = map[string]string{"X-Ratelimit-Limit-Requests": "10", "X-Ratelimit-Remaining-Requests": "9",
					"X-Ratelimit-Reset-Requests": "1m0s", "X-Ratelimit-Limit-Tokens": "10000",
					"X-Ratelimit-Remaining-Tokens": strconv.Itoa(10000 - cost), "X-Ratelimit-Reset-Tokens": "1m0s"}
				if !strings.HasPrefix(h.Get("X-Request-Id"), "req_") {
					t.Errorf("no x-request-id: %v", h)
				}
			case "anthropic":
				want = map[string]string{"Anthropic-Ratelimit-Requests-Limit": "10", "Anthropic-Ratelimit-Requests-Remaining": "8",
					"Anthropic-Ratelimit-Requests-Reset": reset, "Anthropic-Ratelimit-Tokens-Limit": "10000",
					"Anthropic-Ratelimit-Tokens-Remaining": strconv.Itoa(10000 - 2*cost), "Anthropic-Ratelimit-Tokens-Reset": reset}
			case "gemini":
				for k := range h {
					if strings.Contains(strings.ToLower(k), "ratelimit") {
						t.Errorf("gemini sent %s", k)
					}
				}
			}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("%s: %s = %q, want %q", api, k, h.Get(k), v)
				}
			}
			if h := mustSend(t, t.Context(), c, api, base, "hidden", texts, 20).header; len(want) > 0 && h.Get(firstKey(want)) != "" {
				t.Errorf("%s: hide_headers still sent %v", api, h)
			}
			_ = i
		}
		// hide_headers does not hide them on a 429.
		for range 8 {
			mustSend(t, t.Context(), c, "openai", base, "hidden", texts, 20)
		}
		if r := mustSend(t, t.Context(), c, "openai", base, "hidden", texts, 20); r.status != 429 || r.header.Get("X-Ratelimit-Remaining-Requests") != "0" {
			t.Errorf("hidden 429: %d %v", r.status, r.header)
		}
	})
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func TestConfigLimitsOverride(t *testing.T) {
	// The config overstates the limit (rpm 1000); the simulator enforces 2.
	srv := sim.New(oneModel(t, "        rpm: 1000", "      limits: {m: {rpm: 2}}"), sim.Options{})
	c := client(srv)
	for i := range 3 {
		r := mustSend(t, t.Context(), c, "openai", base, "m", prompt(i), 5)
		if want := []int{200, 200, 429}[i]; r.status != want || r.header.Get("X-Ratelimit-Limit-Requests") != "2" {
			t.Fatalf("request %d: %d %v", i, r.status, r.header)
		}
	}
}

func TestFaults(t *testing.T) {
	type want struct {
		status  int
		errType string
	}
	cases := []struct {
		fault    string
		want     map[string]want // by API; nil = transport error or special
		admitted bool            // counts toward the window
	}{
		{"server_error", map[string]want{"openai": {500, "server_error"}, "anthropic": {500, "api_error"}, "gemini": {500, "INTERNAL"}}, true},
		{"unavailable", map[string]want{"openai": {503, "server_error"}, "anthropic": {503, "api_error"}, "gemini": {503, "UNAVAILABLE"}}, true},
		{"overloaded", map[string]want{"openai": {503, "server_error"}, "anthropic": {529, "overloaded_error"}, "gemini": {503, "UNAVAILABLE"}}, true},
		{"auth", map[string]want{"openai": {401, "invalid_request_error"}, "anthropic": {401, "authentication_error"}, "gemini": {401, "UNAUTHENTICATED"}}, false},
		{"insufficient_quota", map[string]want{"openai": {429, "insufficient_quota"}, "anthropic": {400, "invalid_request_error"}, "gemini": {429, "RESOURCE_EXHAUSTED"}}, false},
		{"malformed", nil, true},
		{"reset", nil, true},
		{"hang", nil, true},
	}
	for _, tc := range cases {
		for _, api := range apis {
			t.Run(tc.fault+"/"+api, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := sim.New(oneModel(t, "        rpm: 100", "      faults: {"+tc.fault+": 1}"), sim.Options{})
					c := &http.Client{Transport: srv.Transport(), Timeout: 5 * time.Second}
					start := time.Now()
					r, err := send(t, t.Context(), c, api, base, "m", prompt(1), 10)
					switch tc.fault {
					case "reset":
						if err == nil || !errors.Is(err, syscall.ECONNRESET) {
							t.Fatalf("reset: got %v, %+v", err, r)
						}
					case "hang":
						if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 5*time.Second {
							t.Fatalf("hang: err %v after %v", err, time.Since(start))
						}
					case "malformed":
						if err != nil || r.status != 200 || json.Valid(r.body) || len(r.body) == 0 {
							t.Fatalf("malformed: %v %+v", err, r)
						}
					default:
						w := tc.want[api]
						if err != nil || r.status != w.status || r.errType != w.errType {
							t.Fatalf("got %v %d %q (%s), want %d %q", err, r.status, r.errType, r.body, w.status, w.errType)
						}
						if tc.fault == "insufficient_quota" {
							switch api {
							case "openai":
								ok := r.errCode == "insufficient_quota" && r.header.Get("Retry-After") == ""
								if !ok {
									t.Fatalf("quota: %v %s", r.header, r.body)
								}
							case "anthropic":
								if !strings.Contains(r.errMsg, "credit balance is too low") {
									t.Fatalf("quota: %s", r.body)
								}
							case "gemini":
								if !strings.Contains(r.errMsg, "limit: 0") || r.retry != "" {
									t.Fatalf("quota: %s", r.body)
								}
							}
						}
						if tc.fault == "auth" && api == "openai" && r.errCode != "invalid_api_key" {
							t.Fatalf("auth code %q", r.errCode)
						}
					}
					st := srv.Stats()["p/m"]
					if st.Requests != 1 || st.Faults != 1 || st.OK != 0 || (st.MaxInWindow == 1) != tc.admitted {
						t.Fatalf("stats %+v", st)
					}
				})
			})
		}
	}
}

func TestFaultRatesAreSeeded(t *testing.T) {
	run := func(seed int64) []int {
		srv := sim.New(oneModel(t, "", "      faults: {server_error: 0.2, unavailable: 0.1}"), sim.Options{Seed: seed})
		c := client(srv)
		statuses := make([]int, 600)
		for i := range statuses {
			statuses[i] = mustSend(t, t.Context(), c, "openai", base, "m", prompt(i), 5).status
		}
		st := srv.Stats()["p/m"]
		if st.Faults+st.OK != 600 {
			t.Fatalf("stats %+v", st)
		}
		return statuses
	}
	a, b, other := run(1), run(1), run(2)
	count := map[int]int{}
	same, differ := true, false
	for i := range a {
		count[a[i]]++
		same = same && a[i] == b[i]
		differ = differ || a[i] != other[i]
	}
	if !same || !differ {
		t.Fatalf("same seed must repeat (%v) and another seed differ (%v)", same, differ)
	}
	if count[500] < 80 || count[500] > 160 || count[503] < 35 || count[503] > 90 || count[200]+count[500]+count[503] != 600 {
		t.Fatalf("fault counts %v for rates 0.2 / 0.1 over 600", count)
	}
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := sim.New(oneModel(t, "", "      latency: 100ms\n      latency_per_output_token: 2ms"), sim.Options{})
		c := client(srv)
		for i := range 5 {
			start := time.Now()
			r := mustSend(t, t.Context(), c, "openai", base, "m", prompt(i), 0)
			if d := time.Since(start); r.status != 200 || d != 100*time.Millisecond+time.Duration(r.out)*2*time.Millisecond {
				t.Fatalf("latency %v for %d tokens", d, r.out)
			}
			if r.header.Get("Openai-Processing-Ms") != strconv.Itoa(100+2*r.out) {
				t.Fatalf("openai-processing-ms %q", r.header.Get("Openai-Processing-Ms"))
			}
		}
		srv = sim.New(oneModel(t, "", "      latency: 1s\n      jitter: 0.5"), sim.Options{})
		c = client(srv)
		seen := map[time.Duration]bool{}
		for i := range 20 {
			start := time.Now()
			mustSend(t, t.Context(), c, "openai", base, "m", prompt(i), 0)
			d := time.Since(start)
			if d < 500*time.Millisecond || d > 1500*time.Millisecond {
				t.Fatalf("jittered latency %v outside 1s ± 50%%", d)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Fatalf("jitter barely varies: %v", seen)
		}
		// The client giving up ends the wait at once.
		srv = sim.New(oneModel(t, "", "      latency: 10s"), sim.Options{})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := send(t, ctx, client(srv), "anthropic", base, "m", prompt(1), 5)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 50*time.Millisecond {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
		if st := srv.Stats()["p/m"]; st.Canceled != 1 || st.OK != 0 || st.MaxInWindow != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestConcurrencyCap(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := sim.New(oneModel(t, "", "      latency: 1s\n      max_concurrency: 2"), sim.Options{})
				c := client(srv)
				statuses := make([]int, 5)
				var wg sync.WaitGroup
				for i := range statuses {
					wg.Go(func() { statuses[i] = mustSend(t, t.Context(), c, api, base, "m", prompt(i), 5).status })
				}
				wg.Wait()
				reject := map[string]int{"openai": 429, "anthropic": 529, "gemini": 429}[api]
				count := map[int]int{}
				for _, s := range statuses {
					count[s]++
				}
				if count[200] != 2 || count[reject] != 3 {
					t.Fatalf("statuses %v", statuses)
				}
				st := srv.Stats()["p/m"]
				if st.MaxInFlight != 2 || st.RateLimited != 3 || st.OK != 2 {
					t.Fatalf("stats %+v", st)
				}
				if r := mustSend(t, t.Context(), c, api, base, "m", prompt(9), 5); r.status != 200 {
					t.Fatalf("after the burst: %d", r.status)
				}
			})
		})
	}
}

func TestContextLengthAndMaxTokens(t *testing.T) {
	srv := sim.New(oneModel(t, "        context_window: 100\n        max_output_tokens: 80", ""), sim.Options{})
	c := client(srv)
	texts := []string{"sys", strings.Repeat("a", 100)} // 3+4+25+4+1+4 = 37 prompt tokens
	if p := sim.PromptTokens(texts); p != 37 {
		t.Fatalf("prompt %d", p)
	}
	want := map[string][2]string{"openai": {"invalid_request_error", "context_length_exceeded"},
		"anthropic": {"invalid_request_error", ""}, "gemini": {"INVALID_ARGUMENT", ""}}
	for _, api := range apis {
		if r := mustSend(t, t.Context(), c, api, base, "m", texts, 63); r.status != 200 {
			t.Errorf("%s: 37+63 fits in 100: %d %s", api, r.status, r.body)
		}
		r := mustSend(t, t.Context(), c, api, base, "m", texts, 64)
		if r.status != 400 || r.errType != want[api][0] || r.errCode != want[api][1] {
			t.Errorf("%s: context: %d %s", api, r.status, r.body)
		}
		if api == "anthropic" && !strings.Contains(r.errMsg, "prompt is too long") {
			t.Errorf("anthropic message %q", r.errMsg)
		}
		if r := mustSend(t, t.Context(), c, api, base, "m", []string{"s", "u"}, 81); r.status != 400 || !strings.Contains(r.errMsg, "81") {
			t.Errorf("%s: max_tokens above max_output_tokens: %d %s", api, r.status, r.body)
		}
	}
	if st := srv.Stats()["p/m"]; st.Invalid != 6 || st.OK != 3 || st.MaxInWindow != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestRouting(t *testing.T) {
	cfg := mustConfig(t, `
providers:
  - name: a
    type: sim
    models: [{name: shared}, {name: only-a}]
  - name: b
    type: sim
    models: [{name: shared}]
    sim: {api: anthropic}
  - name: real
    type: openai
    base_url: http://example.invalid/v1
    models: [{name: not-simulated}]
`)
	srv := sim.New(cfg, sim.Options{})
	c := client(srv)
	texts := prompt(1)
	mustSend(t, t.Context(), c, "openai", base, "shared", texts, 5)    // no hint, api openai → a
	mustSend(t, t.Context(), c, "anthropic", base, "shared", texts, 5) // api match → b
	mustSend(t, t.Context(), c, "gemini", base, "shared", texts, 5)    // no match → first: a
	mustSend(t, t.Context(), c, "anthropic", base+"/sim/a", "shared", texts, 5)
	req := buildRequest(t, t.Context(), "openai", base, "shared", texts, 5)
	req.Header.Set(sim.ProviderHeader, "b")
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("header routing: %v", err)
	}
	resp.Body.Close()
	st := srv.Stats()
	if st["a/shared"].OK != 3 || st["b/shared"].OK != 2 || len(st) != 3 {
		t.Fatalf("stats %+v", st)
	}
	for _, api := range apis {
		r := mustSend(t, t.Context(), c, api, base, "not-simulated", texts, 5)
		if r.status != 404 || (api == "openai" && r.errCode != "model_not_found") {
			t.Errorf("%s unknown model: %d %s", api, r.status, r.body)
		}
		if r := mustSend(t, t.Context(), c, api, base+"/sim/b", "only-a", texts, 5); r.status != 404 {
			t.Errorf("%s model of another provider: %d", api, r.status)
		}
	}
	// The models list, all or one provider's.
	for path, want := range map[string]string{"/v1/models": "shared,only-a,shared", "/sim/b/v1/models": "shared"} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Object string
			Data   []struct{ ID, OwnedBy string }
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		var ids []string
		for _, d := range list.Data {
			ids = append(ids, d.ID)
		}
		if err != nil || resp.StatusCode != 200 || list.Object != "list" || strings.Join(ids, ",") != want {
			t.Errorf("GET %s: %v %d %+v", path, err, resp.StatusCode, list)
		}
	}
	if got := sim.New(cfg, sim.Options{}).Providers(); len(got) != 2 || got[1].API != "anthropic" || len(got[0].Models) != 2 {
		t.Errorf("Providers %+v", got)
	}
}

func TestBadRequests(t *testing.T) {
	srv := sim.New(oneModel(t, "", ""), sim.Options{})
	c := client(srv)
	for _, tc := range []struct{ path, body, want string }{
		{"/v1/chat/completions", `{"model":"m","messages":[`, "invalid_request_error"},
		{"/v1/chat/completions", `{"model":"m","messages":[]}`, "invalid_request_error"},
		{"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}`, "invalid_request_error"},
		{"/v1/messages", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, "invalid_request_error"},
		{"/v1beta/models/m:generateContent", `{"contents":[]}`, "INVALID_ARGUMENT"},
		{"/v1beta/models/m:streamGenerateContent", `{}`, "NOT_FOUND"},
		{"/v2/other", `{}`, "invalid_request_error"},
	} {
		resp, err := c.Post(base+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 4 || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, resp.StatusCode, b)
		}
	}
	if st := srv.Stats()["p/m"]; st.Requests != 0 {
		t.Errorf("unparsable requests reached the model: %+v", st)
	}
}

func TestContentPartsAndSnakeCase(t *testing.T) {
	srv := sim.New(oneModel(t, "", ""), sim.Options{})
	c := client(srv)
	texts := []string{"sys", "part one\npart two"}
	for _, tc := range []struct{ api, path, body string }{
		{"openai", "/v1/chat/completions", `{"model":"m","max_completion_tokens":7,"messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"part one"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"part two"}]}]}`},
		{"anthropic", "/v1/messages", `{"model":"m","max_tokens":7,"system":[{"type":"text","text":"sys"}],"messages":[{"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"}]}]}`},
		{"gemini", "/v1beta/models/m:generateContent", `{"system_instruction":{"parts":[{"text":"sys"}]},"contents":[{"role":"user","parts":[{"text":"part one"},{"text":"part two"}]}],"generation_config":{"max_output_tokens":7}}`},
	} {
		resp, err := c.Post(base+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := decode(t, tc.api, resp.StatusCode, resp.Header, b)
		if want, _, _ := sim.Reply(texts, 7); r.text != want || r.out != 7 || r.finish != "length" {
			t.Errorf("%s: %s", tc.api, b)
		}
	}
}
