package provider_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
)

// t0 is the Date of every recorded response.
var t0 = time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func recordedHeader(t *testing.T, api, name string) http.Header {
	t.Helper()
	rec, err := replay.Load(filepath.Join(replay.Dir(api), name))
	if err != nil {
		t.Fatal(err)
	}
	return rec.Header
}

func TestParseRateLimits(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want provider.RateLimits
	}{
		{
			name: "openai success",
			h:    recordedHeader(t, "openai", "success.http"),
			want: provider.RateLimits{LimitRequests: 5000, RemainingRequests: 4999, ResetRequests: 12 * time.Millisecond,
				LimitTokens: 4000000, RemainingTokens: 3998466, ResetTokens: 23 * time.Millisecond, HasRequests: true, HasTokens: true},
		},
		{
			name: "openai 429 tokens exhausted, reset 1m0s",
			h:    recordedHeader(t, "openai", "429_rate_limit.http"),
			want: provider.RateLimits{LimitRequests: 500, RemainingRequests: 499, ResetRequests: 120 * time.Millisecond,
				LimitTokens: 200000, RemainingTokens: 0, ResetTokens: time.Minute, HasRequests: true, HasTokens: true},
		},
		{
			name: "groq: requests headers alone do not say per day (the adapter knows Groq by host), fractional resets, retry-after",
			h:    recordedHeader(t, "openai", "groq_429.http"),
			want: provider.RateLimits{LimitRequests: 14400, RemainingRequests: 14370, ResetRequests: 2*time.Minute + 59560*time.Millisecond,
				LimitTokens: 6000, RemainingTokens: 28, ResetTokens: 7660 * time.Millisecond, HasRequests: true, HasTokens: true,
				RetryAfter: 3 * time.Second},
		},
		{
			name: "openai reset 6m0s and 1s",
			h: hdr("x-ratelimit-limit-requests", "10000", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1s",
				"x-ratelimit-limit-tokens", "1000000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6m0s"),
			want: provider.RateLimits{LimitRequests: 10000, ResetRequests: time.Second, LimitTokens: 1000000, ResetTokens: 6 * time.Minute,
				HasRequests: true, HasTokens: true},
		},
		{
			name: "reset longer than an hour is a daily budget",
			h:    hdr("x-ratelimit-limit-requests", "1000", "x-ratelimit-remaining-requests", "1000", "x-ratelimit-reset-requests", "2h0m0s"),
			want: provider.RateLimits{LimitRequests: 1000, RemainingRequests: 1000, ResetRequests: 2 * time.Hour, HasRequests: true, RequestsPerDay: true},
		},
		{
			name: "bare seconds and unix-seconds resets",
			h: hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "59", "x-ratelimit-reset-requests", "7.66",
				"x-ratelimit-limit-tokens", "1000", "x-ratelimit-remaining-tokens", "10", "x-ratelimit-reset-tokens", "1749556830"),
			want: provider.RateLimits{LimitRequests: 60, RemainingRequests: 59, ResetRequests: 7660 * time.Millisecond,
				LimitTokens: 1000, RemainingTokens: 10, ResetTokens: 30 * time.Second, HasRequests: true, HasTokens: true},
		},
		{
			name: "azure -1 means unknown",
			h:    hdr("x-ratelimit-limit-tokens", "-1", "x-ratelimit-remaining-tokens", "-1", "x-ratelimit-reset-tokens", "0"),
			want: provider.RateLimits{},
		},
		{
			name: "anthropic success: combined tokens family wins over input-tokens",
			h:    recordedHeader(t, "anthropic", "success.http"),
			want: provider.RateLimits{LimitRequests: 50, RemainingRequests: 49, ResetRequests: 2 * time.Second,
				LimitTokens: 60000, RemainingTokens: 57964, ResetTokens: time.Second, HasRequests: true, HasTokens: true},
		},
		{
			name: "anthropic 429 with retry-after",
			h:    recordedHeader(t, "anthropic", "429_rate_limit.http"),
			want: provider.RateLimits{LimitRequests: 50, RemainingRequests: 37, ResetRequests: 16 * time.Second,
				LimitTokens: 60000, RemainingTokens: 10000, ResetTokens: 21 * time.Second, HasRequests: true, HasTokens: true,
				RetryAfter: 21 * time.Second},
		},
		{
			name: "anthropic input-tokens only, reset in the past clamps to 0",
			h: hdr("anthropic-ratelimit-input-tokens-limit", "40000", "anthropic-ratelimit-input-tokens-remaining", "0",
				"anthropic-ratelimit-input-tokens-reset", "2025-06-10T12:00:04.5Z",
				"anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "50",
				"anthropic-ratelimit-requests-reset", "2025-06-10T11:59:00Z"),
			want: provider.RateLimits{LimitRequests: 50, RemainingRequests: 50, LimitTokens: 40000, ResetTokens: 4500 * time.Millisecond,
				HasRequests: true, HasTokens: true},
		},
		{
			name: "retry-after-ms wins over retry-after",
			h:    hdr("retry-after-ms", "250", "retry-after", "2"),
			want: provider.RateLimits{RetryAfter: 250 * time.Millisecond},
		},
		{
			name: "retry-after fractional seconds",
			h:    hdr("retry-after", "1.5"),
			want: provider.RateLimits{RetryAfter: 1500 * time.Millisecond},
		},
		{
			name: "retry-after HTTP date",
			h:    hdr("retry-after", "Tue, 10 Jun 2025 12:00:30 GMT"),
			want: provider.RateLimits{RetryAfter: 30 * time.Second},
		},
		{
			name: "garbage and negative values are absent",
			h:    hdr("retry-after", "soon", "retry-after-ms", "-5", "x-ratelimit-limit-requests", "lots", "x-ratelimit-reset-tokens", "1m"),
			want: provider.RateLimits{},
		},
		{
			name: "no headers",
			h:    http.Header{},
			want: provider.RateLimits{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.ObservedAt = t0
			got := provider.ParseRateLimits(tt.h, t0)
			if got != tt.want {
				t.Errorf("ParseRateLimits:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestRetryDelayFromBody(t *testing.T) {
	read := func(api, name string) string {
		rec, err := replay.Load(filepath.Join(replay.Dir(api), name))
		if err != nil {
			t.Fatal(err)
		}
		return string(rec.Body)
	}
	tests := []struct {
		name string
		body string
		want time.Duration
	}{
		{"gemini RetryInfo 7s", read("gemini", "429_resource_exhausted.http"), 7 * time.Second},
		{"gemini limit 0, retry in text only", read("gemini", "429_limit_zero.http"), 38962214405 * time.Nanosecond},
		{"RetryInfo fractional", `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.5s"}]}}`, 500 * time.Millisecond},
		{"array-wrapped google error", `[{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}]}}]`, 12 * time.Second},
		{"RetryInfo wins over text", `{"error":{"message":"Please retry in 9s.","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}`, 3 * time.Second},
		{"plain text", `Quota exceeded. Please retry in 7.5s.`, 7500 * time.Millisecond},
		{"openai try again in", read("openai", "429_rate_limit.http"), 264 * time.Millisecond},
		{"compound duration", `{"error":{"message":"Please try again in 2m30.5s."}}`, 2*time.Minute + 30500*time.Millisecond},
		{"nothing", read("gemini", "500_internal.http"), 0},
		{"not json, no hint", `<html>502 Bad Gateway</html>`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provider.RetryDelayFromBody([]byte(tt.body)); got != tt.want {
				t.Errorf("RetryDelayFromBody = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFixturesHaveNoKeys guards the recorded samples: no real-looking secret may be committed.
func TestFixturesHaveNoKeys(t *testing.T) {
	for _, api := range []string{"openai", "anthropic", "gemini"} {
		files, err := filepath.Glob(filepath.Join(replay.Dir(api), "*.http"))
		if err != nil || len(files) < 5 {
			t.Fatalf("%s: want recorded samples, got %d (%v)", api, len(files), err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := replay.Load(f); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			for _, bad := range []string{"sk-ant-", "AIza", "Authorization:", "x-api-key:", "x-goog-api-key:"} {
				if strings.Contains(strings.ToLower(string(b)), strings.ToLower(bad)) {
					t.Errorf("%s contains %q", f, bad)
				}
			}
		}
	}
}
