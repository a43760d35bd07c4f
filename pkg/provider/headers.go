package provider

import (
	"encoding/json"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A request budget is taken to be per day when its reset exceeds dailyReset. (Inferring the window
// from reset × limit / used misreads sliding-window APIs, whose reset is the age of the oldest
// request, so Groq's daily budget is recognised by its host instead: see adapters.)
const dailyReset = time.Hour

// ParseRateLimits reads the rate-limit state from one response's headers, observed at now.
//
// It understands:
//   - OpenAI / Groq / most OpenAI-compatible APIs: x-ratelimit-{limit,remaining,reset}-{requests,tokens},
//     where reset is the time until the budget is fully restored as a Go-like duration ("6m0s", "1s",
//     "250ms", "2m59.56s", "7.66s"; a bare number is seconds, or a Unix time in s/ms when that large);
//   - Anthropic: anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset},
//     where reset is an RFC 3339 time, turned into a duration from now (never negative). The combined
//     tokens-* family is used when present, else input-tokens-*;
//   - retry-after (seconds, fractional seconds or an HTTP date) and retry-after-ms, the latter winning.
//
// RequestsPerDay is set when the request budget's reset exceeds an hour. Callers that know the API's
// request headers are per day (Groq) set it themselves. Unparseable or negative values count as absent.
func ParseRateLimits(h http.Header, now time.Time) RateLimits {
	rl := RateLimits{ObservedAt: now}

	// OpenAI-style headers.
	if l, r, reset, ok := triple(h, "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", now, parseResetDuration); ok {
		rl.LimitRequests, rl.RemainingRequests, rl.ResetRequests, rl.HasRequests = l, r, reset, true
		rl.RequestsPerDay = reset > dailyReset
	}
	if l, r, reset, ok := triple(h, "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", now, parseResetDuration); ok {
		rl.LimitTokens, rl.RemainingTokens, rl.ResetTokens, rl.HasTokens = l, r, reset, true
	}

	// Anthropic headers.
	if !rl.HasRequests {
		if l, r, reset, ok := triple(h, "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", now, parseResetTime); ok {
			rl.LimitRequests, rl.RemainingRequests, rl.ResetRequests, rl.HasRequests = l, r, reset, true
			rl.RequestsPerDay = reset > dailyReset
		}
	}
	for _, fam := range []string{"tokens", "input-tokens"} {
		if rl.HasTokens {
			break
		}
		p := "anthropic-ratelimit-" + fam + "-"
		if l, r, reset, ok := triple(h, p+"limit", p+"remaining", p+"reset", now, parseResetTime); ok {
			rl.LimitTokens, rl.RemainingTokens, rl.ResetTokens, rl.HasTokens = l, r, reset, true
		}
	}

	rl.RetryAfter = RetryAfter(h, now)
	return rl
}

// RetryAfter returns the wait a response asks for: retry-after-ms (milliseconds, possibly
// fractional) when present and valid, else retry-after as seconds (possibly fractional) or an HTTP
// date relative to now. It returns 0 when neither is present, unparseable, or in the past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && !math.IsInf(ms, 0) {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("retry-after"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || math.IsInf(s, 0) || math.IsNaN(s) {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// triple reads a limit/remaining/reset header set. ok is false unless limit or remaining parses
// (a lone reset header is not enough to describe a budget).
func triple(h http.Header, limitKey, remKey, resetKey string, now time.Time,
	reset func(string, time.Time) (time.Duration, bool)) (limit, remaining int, d time.Duration, ok bool) {
	limit, okL := headerInt(h, limitKey)
	remaining, okR := headerInt(h, remKey)
	if !okL && !okR {
		return 0, 0, 0, false
	}
	if v := strings.TrimSpace(h.Get(resetKey)); v != "" {
		if r, good := reset(v, now); good {
			d = r
		}
	}
	return limit, remaining, d, true
}

// headerInt parses a non-negative integer header ("-1", as some gateways send for unknown, is absent).
func headerInt(h http.Header, key string) (int, bool) {
	v := strings.TrimSpace(h.Get(key))
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || f > math.MaxInt32 || f != math.Trunc(f) {
			return 0, false
		}
		n = int64(f)
	}
	if n < 0 || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// parseResetDuration parses an OpenAI-style reset: a Go duration ("6m0s", "2m59.56s", "250ms"),
// a bare number of seconds ("7.66"), or a Unix time (seconds ≥ 1e9 or milliseconds ≥ 1e12).
func parseResetDuration(v string, now time.Time) (time.Duration, bool) {
	if d, err := time.ParseDuration(v); err == nil {
		return max(d, 0), true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	switch {
	case f >= 1e12: // Unix milliseconds
		return max(time.UnixMilli(int64(f)).Sub(now), 0), true
	case f >= 1e9: // Unix seconds
		return max(time.Unix(int64(f), 0).Sub(now), 0), true
	}
	return time.Duration(f * float64(time.Second)), true
}

// parseResetTime parses an Anthropic-style RFC 3339 reset time into a duration from now.
func parseResetTime(v string, now time.Time) (time.Duration, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return parseResetDuration(v, now)
	}
	return max(t.Sub(now), 0), true
}

// looksDaily reports whether a request budget refills over more than an hour.
// retryInText finds "retry in 7.5s" (Gemini) or "try again in 264ms" (OpenAI) in an error message.
var retryInText = regexp.MustCompile(`(?i)(?:retry|try again) in ([0-9][0-9.]*(?:ns|us|µs|ms|s|m|h)(?:[0-9][0-9.]*(?:ns|us|µs|ms|s|m|h))*)`)

// RetryDelayFromBody extracts a retry delay from an error body: a Google
// type.googleapis.com/google.rpc.RetryInfo detail's retryDelay ("7s", "0.5s") in
// {"error":{"details":[...]}} (also when the body is a one-element array of such objects), else
// "Please retry in 7.5s" / "Please try again in 264ms" in the error message or, failing JSON, the
// raw text. It returns 0 when no delay is found.
func RetryDelayFromBody(body []byte) time.Duration {
	var env googleErrorEnvelope
	msg := ""
	if decodeGoogleError(body, &env) {
		for _, d := range env.Error.Details {
			if strings.HasSuffix(d.Type, "google.rpc.RetryInfo") && d.RetryDelay != "" {
				if v, err := time.ParseDuration(d.RetryDelay); err == nil && v > 0 {
					return v
				}
			}
		}
		msg = env.Error.Message
	} else {
		msg = string(body)
	}
	return RetryDelayFromText(msg)
}

// RetryDelayFromText finds "retry in 7.5s" or "try again in 264ms" (any Go duration) in s and
// returns that duration, or 0.
func RetryDelayFromText(s string) time.Duration {
	m := retryInText.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	d, err := time.ParseDuration(strings.TrimRight(m[1], "."))
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// googleErrorEnvelope is the google.rpc.Status error body the Gemini API sends.
type googleErrorEnvelope struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type       string `json:"@type"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	} `json:"error"`
}

// decodeGoogleError decodes a Google error body, accepting the [{"error":...}] array form.
func decodeGoogleError(body []byte, env *googleErrorEnvelope) bool {
	b := trimJSONSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var arr []googleErrorEnvelope
		if json.Unmarshal(b, &arr) != nil || len(arr) == 0 {
			return false
		}
		*env = arr[0]
		return true
	}
	return json.Unmarshal(b, env) == nil
}

func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
