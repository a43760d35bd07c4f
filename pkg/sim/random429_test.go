package sim_test

import (
	"fmt"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/sim"
)

// Random 429s (faults.rate_limit) are drawn before admission: they count nowhere in the windows,
// carry the configured Retry-After, and carry limit headers with budget left only when asked to.
func TestRandomRateLimits(t *testing.T) {
	for _, api := range apis {
		for _, headers := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/headers=%v", api, headers), func(t *testing.T) {
				srv := sim.New(oneModel(t, "        rpm: 100", fmt.Sprintf(
					"      api: %s\n      faults: {rate_limit: 0.5}\n      rate_limit_retry_after: 1s\n      rate_limit_headers: %v", api, headers)),
					sim.Options{})
				c := client(srv)
				random := 0
				for i := range 40 {
					r := mustSend(t, t.Context(), c, api, "http://sim", "m", prompt(i), 10)
					if r.status == 200 {
						continue
					}
					if r.status != 429 || r.errCode+r.errType == "" {
						t.Fatalf("status %d: %s", r.status, r.body)
					}
					random++
					switch api {
					case "gemini":
						if r.retry != "1s" {
							t.Errorf("retryDelay %q, want 1s", r.retry)
						}
					default:
						if got := r.header.Get("Retry-After"); got != "1" {
							t.Errorf("Retry-After %q, want 1", got)
						}
					}
					hasLimit := r.header.Get("X-Ratelimit-Limit-Requests") != "" || r.header.Get("Anthropic-Ratelimit-Requests-Limit") != ""
					if api != "gemini" && hasLimit != headers {
						t.Errorf("limit headers present %v, want %v: %v", hasLimit, headers, r.header)
					}
					if rem := r.header.Get("X-Ratelimit-Remaining-Requests") + r.header.Get("Anthropic-Ratelimit-Requests-Remaining"); headers && api != "gemini" && (rem == "" || rem == "0") {
						t.Errorf("remaining %q on a random 429, want budget left", rem)
					}
				}
				st := srv.Stats()["p/m"]
				if random == 0 || random == 40 || st.RandomRateLimited != random || st.RateLimited != 0 || st.MaxInWindow != 40-random || st.OK != 40-random {
					t.Fatalf("%d random 429s, stats %+v", random, st)
				}
			})
		}
	}
}
