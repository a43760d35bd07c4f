package adapters_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
)

// TestRecordedErrors replays the error responses recorded from each API
// (testdata/providers/{api}/*.http) through its adapter: the fields lifted from the body, the
// Retry-After from headers or body, the rate limits of the headers, the class, and the message.
func TestRecordedErrors(t *testing.T) {
	tests := []struct {
		d          dialect
		fixture    string
		status     int
		typ, code  string
		msg        string
		retryAfter time.Duration
		class      provider.ErrorType
		limits     func(provider.RateLimits) bool
	}{
		{dOpenAI, "429_rate_limit.http", 429, "tokens", "rate_limit_exceeded", "Rate limit reached for gpt-4o-mini", 264 * time.Millisecond, provider.TypeRateLimit,
			func(l provider.RateLimits) bool {
				return l.HasTokens && l.RemainingTokens == 0 && l.ResetTokens == time.Minute
			}},
		{dOpenAI, "429_insufficient_quota.http", 429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota", 0, provider.TypeQuotaExhausted,
			func(l provider.RateLimits) bool { return !l.HasRequests }},
		{dOpenAI, "400_context_length.http", 400, "invalid_request_error", "context_length_exceeded", "maximum context length is 128000 tokens", 0, provider.TypeContextLength,
			func(l provider.RateLimits) bool {
				return l.RemainingTokens == 3870915 && l.ResetTokens == 1936*time.Millisecond
			}},
		{dOpenAI, "401_invalid_key.http", 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided", 0, provider.TypeAuth, nil},
		{dOpenAI, "500_server_error.http", 500, "server_error", "", "The server had an error", 0, provider.TypeServerError, nil},
		{dOpenAI, "503_overloaded.http", 503, "server_error", "", "currently overloaded", 0, provider.TypeServerError, nil},
		{dOpenAI, "groq_429.http", 429, "tokens", "rate_limit_exceeded", "llama-3.1-8b-instant", 3 * time.Second, provider.TypeRateLimit,
			func(l provider.RateLimits) bool {
				return !l.RequestsPerDay && // not a groq.com base URL: the headers alone are per-minute
					l.ResetRequests == 179560*time.Millisecond
			}},
		{dAnthropic, "429_rate_limit.http", 429, "rate_limit_error", "", "50,000 input tokens per minute", 21 * time.Second, provider.TypeRateLimit,
			func(l provider.RateLimits) bool {
				return l.RemainingRequests == 37 && l.ResetTokens == 21*time.Second && l.RemainingTokens == 10000
			}},
		{dAnthropic, "429_spend_limit.http", 429, "rate_limit_error", "enforced_spend_limit_reached", "monthly spend limit", 0, provider.TypeQuotaExhausted, nil},
		{dAnthropic, "400_prompt_too_long.http", 400, "invalid_request_error", "", "prompt is too long: 208721 tokens > 200000 maximum", 0, provider.TypeContextLength, nil},
		{dAnthropic, "401_authentication.http", 401, "authentication_error", "", "invalid x-api-key", 0, provider.TypeAuth, nil},
		{dAnthropic, "500_api_error.http", 500, "api_error", "", "Internal server error", 0, provider.TypeServerError, nil},
		{dAnthropic, "529_overloaded.http", 529, "overloaded_error", "", "Overloaded", 0, provider.TypeOverloaded, nil},
		{dGemini, "429_resource_exhausted.http", 429, "RESOURCE_EXHAUSTED", "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "You exceeded your current quota", 7 * time.Second, provider.TypeRateLimit, nil},
		{dGemini, "429_limit_zero.http", 429, "RESOURCE_EXHAUSTED", "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "limit: 0, model: gemini-2.5-pro", 38962214405 * time.Nanosecond, provider.TypeQuotaExhausted, nil},
		{dGemini, "400_token_limit.http", 400, "INVALID_ARGUMENT", "", "exceeds the maximum number of tokens allowed (1048576)", 0, provider.TypeContextLength, nil},
		{dGemini, "400_api_key_invalid.http", 400, "INVALID_ARGUMENT", "API_KEY_INVALID", "API key not valid", 0, provider.TypeAuth, nil},
		{dGemini, "500_internal.http", 500, "INTERNAL", "", "An internal error has occurred", 0, provider.TypeServerError, nil},
		{dGemini, "503_unavailable.http", 503, "UNAVAILABLE", "", "The model is overloaded", 0, provider.TypeOverloaded, nil},
	}
	for _, tt := range tests {
		t.Run(filepath.Join(tt.d.name, tt.fixture), func(t *testing.T) {
			c, _ := replay.Adapter(t, tt.d.new, tt.d.name, tt.fixture, provider.Options{Name: tt.d.name, APIKey: testKey})
			resp, err := c.Complete(context.Background(), hello("the-model"))
			var ae *provider.APIError
			if resp != nil || !errors.As(err, &ae) {
				t.Fatalf("resp=%v err=%v", resp, err)
			}
			if ae.StatusCode != tt.status || ae.Type != tt.typ || ae.Code != tt.code || !strings.Contains(ae.Message, tt.msg) ||
				ae.RetryAfter != tt.retryAfter || ae.Limits.RetryAfter != tt.retryAfter || !ae.Limits.ObservedAt.Equal(replay.Now()) ||
				ae.ConnBroken || ae.Malformed || len(ae.Body) == 0 {
				t.Errorf("apiErr = %+v", ae)
			}
			wantRetry := tt.retryAfter
			if !provider.ClassOf(tt.class).Retryable {
				wantRetry = 0
			}
			if ae.Class.Type != tt.class || ae.Class.StatusCode != tt.status || ae.Class.RetryAfter != wantRetry {
				t.Errorf("class = %+v, want %s with RetryAfter %v", ae.Class, tt.class, wantRetry)
			}
			if tt.limits != nil && !tt.limits(ae.Limits) {
				t.Errorf("limits = %+v", ae.Limits)
			}
			if !strings.HasPrefix(err.Error(), tt.d.name+": the-model: HTTP ") || !strings.Contains(err.Error(), tt.typ) {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}
