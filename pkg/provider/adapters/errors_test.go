package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/anthropic"
	"github.com/llmbatch/llmbatch/pkg/provider/gemini"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
	"github.com/llmbatch/llmbatch/pkg/provider/openai"
	"github.com/llmbatch/llmbatch/pkg/retry"
)

// testKey is the key every adapter in these tests sends; no error may carry it.
const testKey = "sk-TESTKEY-do-not-leak-0123456789"

// dialect is one adapter under test: its constructor and the smallest success body of its API.
type dialect struct {
	name string
	new  replay.New
	ok   string
}

var (
	dOpenAI    = dialect{"openai", openai.New, openaiOK}
	dAnthropic = dialect{"anthropic", anthropic.New, anthropicOK}
	dGemini    = dialect{"gemini", gemini.New, geminiOK}
)

// dialects are the three adapters every shared table runs against.
func dialects() []dialect { return []dialect{dOpenAI, dAnthropic, dGemini} }

// serve returns the dialect's adapter answering every request with status, header and body.
func (d dialect) serve(tb testing.TB, status int, header http.Header, body string) *provider.Adapter {
	return replay.MustNew(tb, d.new, provider.Options{Name: d.name, APIKey: testKey, Client: replay.Serve(status, header, body)})
}

// complete sends one request and returns its *APIError, failing the test on a success or on any
// other error.
func (d dialect) complete(tb testing.TB, a *provider.Adapter) (*provider.APIError, error) {
	tb.Helper()
	resp, err := a.Complete(context.Background(), hello("m"))
	var ae *provider.APIError
	if !errors.As(err, &ae) {
		tb.Fatalf("%s: want an *APIError, got resp=%+v err=%v", d.name, resp, err)
	}
	if strings.Contains(err.Error(), testKey) || strings.Contains(string(ae.Body), testKey) {
		tb.Fatalf("%s: key in error: %v", d.name, err)
	}
	return ae, err
}

// TestErrorBodiesClassifiedByTheirAdapter: real error bodies of each API (and of the servers
// compatible with OpenAI) are classified by their own adapter when it parses them; retry.Classify
// only reads that class.
func TestErrorBodiesClassifiedByTheirAdapter(t *testing.T) {
	tests := []struct {
		d      dialect
		name   string
		status int
		body   string
		want   provider.ErrorType
		action provider.Action
	}{
		{dOpenAI, "openai rpm 429", 429,
			`{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			provider.TypeRateLimit, provider.ActionRetry},
		{dOpenAI, "openai tpm 429", 429,
			`{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500. Please try again in 3s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
			provider.TypeRateLimit, provider.ActionRetry},
		{dOpenAI, "openai insufficient_quota", 429,
			`{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			provider.TypeQuotaExhausted, provider.ActionDisableProvider},
		{dOpenAI, "openai spend limit", 429,
			`{"error":{"message":"You have reached your organization's spend limit.","type":"insufficient_quota","param":null,"code":"enforced_spend_limit_reached"}}`,
			provider.TypeQuotaExhausted, provider.ActionDisableProvider},
		{dOpenAI, "openai request larger than TPM", 429,
			`{"error":{"message":"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 36000. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
			provider.TypeContextLength, provider.ActionFailoverLargerContext},
		{dOpenAI, "openai rpd limit 0", 429,
			`{"error":{"message":"Rate limit reached for o1 in organization org-abc on requests per day (RPD): Limit 0, Used 0, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			provider.TypeQuotaExhausted, provider.ActionDisableProvider},
		{dOpenAI, "openai context length", 400,
			`{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			provider.TypeContextLength, provider.ActionFailoverLargerContext},
		{dOpenAI, "openai bad param", 400,
			`{"error":{"message":"Invalid value for 'temperature': expected a number between 0 and 2.","type":"invalid_request_error","param":"temperature","code":null}}`,
			provider.TypeBadRequest, provider.ActionGiveUp},
		{dOpenAI, "openai max_tokens too large", 400,
			`{"error":{"message":"max_tokens is too large: 20000. This model supports at most 16384 completion tokens, whereas you provided 20000.","type":"invalid_request_error","param":"max_tokens","code":null}}`,
			provider.TypeBadRequest, provider.ActionGiveUp},
		{dOpenAI, "openai invalid prompt", 400,
			`{"error":{"message":"Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.","type":"invalid_request_error","param":null,"code":"invalid_prompt"}}`,
			provider.TypeContentFilter, provider.ActionGiveUp},
		{dOpenAI, "azure content filter", 400,
			`{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}`,
			provider.TypeContentFilter, provider.ActionGiveUp},
		{dOpenAI, "openai 401", 401,
			`{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			provider.TypeAuth, provider.ActionDisableProvider},
		{dOpenAI, "openai 403 region", 403,
			`{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`,
			provider.TypePermission, provider.ActionDisableProvider},
		{dOpenAI, "openai 404 model", 404,
			`{"error":{"message":"The model ` + "`gpt-9`" + ` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			provider.TypeNotFound, provider.ActionFailover},
		{dOpenAI, "openai 500", 500,
			`{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`,
			provider.TypeServerError, provider.ActionRetry},
		{dOpenAI, "openai 503 engine overloaded", 503,
			`{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}`,
			provider.TypeServerError, provider.ActionRetry},
		{dOpenAI, "cloudflare 502 html", 502,
			`<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>`,
			provider.TypeServerError, provider.ActionRetry},
		{dOpenAI, "gateway 504", 504,
			``,
			provider.TypeServerError, provider.ActionRetry},
		{dOpenAI, "openai 409", 409,
			``,
			provider.TypeServerError, provider.ActionRetry},
		{dOpenAI, "408", 408,
			``,
			provider.TypeTimeout, provider.ActionRetry},
		{dOpenAI, "groq tpd 429", 429,
			`{"error":{"message":"Rate limit reached for model ` + "`llama-3.3-70b-versatile`" + ` in organization ` + "`org_01`" + ` service tier ` + "`on_demand`" + ` on tokens per day (TPD): Limit 100000, Used 99754, Requested 1236. Please try again in 14m15.36s.","type":"tokens","code":"rate_limit_exceeded"}}`,
			provider.TypeRateLimit, provider.ActionRetry},
		{dOpenAI, "groq 413 request too large", 413,
			`{"error":{"message":"Request too large for model ...","type":"tokens","code":"rate_limit_exceeded"}}`,
			provider.TypeContextLength, provider.ActionFailoverLargerContext},
		{dAnthropic, "anthropic 429", 429,
			`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (abc) of 50,000 input tokens per minute."},"request_id":"req_011"}`,
			provider.TypeRateLimit, provider.ActionRetry},
		{dAnthropic, "anthropic 529", 529,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}`,
			provider.TypeOverloaded, provider.ActionRetry},
		{dAnthropic, "anthropic overloaded_error on 500", 500,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			provider.TypeOverloaded, provider.ActionRetry},
		{dAnthropic, "anthropic 500", 500,
			`{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`,
			provider.TypeServerError, provider.ActionRetry},
		{dAnthropic, "anthropic prompt too long", 400,
			`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}`,
			provider.TypeContextLength, provider.ActionFailoverLargerContext},
		{dAnthropic, "anthropic input+max_tokens", 400,
			`{"type":"error","error":{"type":"invalid_request_error","message":"input length and ` + "`max_tokens`" + ` exceed context limit: 195000 + 8192 > 200000, decrease input length or ` + "`max_tokens`" + ` and try again"}}`,
			provider.TypeContextLength, provider.ActionFailoverLargerContext},
		{dAnthropic, "anthropic max_tokens too big", 400,
			`{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-20250514"}}`,
			provider.TypeBadRequest, provider.ActionGiveUp},
		{dAnthropic, "anthropic credit balance", 400,
			`{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}`,
			provider.TypeQuotaExhausted, provider.ActionDisableProvider},
		{dAnthropic, "anthropic billing_error 402", 402,
			`{"type":"error","error":{"type":"billing_error","message":"There is an issue with your billing."}}`,
			provider.TypeQuotaExhausted, provider.ActionDisableProvider},
		{dAnthropic, "anthropic 401", 401,
			`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`,
			provider.TypeAuth, provider.ActionDisableProvider},
		{dAnthropic, "anthropic 403", 403,
			`{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}`,
			provider.TypePermission, provider.ActionDisableProvider},
		{dAnthropic, "anthropic 404", 404,
			`{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}`,
			provider.TypeNotFound, provider.ActionFailover},
		{dAnthropic, "anthropic 413", 413,
			`{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`,
			provider.TypeContextLength, provider.ActionFailoverLargerContext},
		{dGemini, "gemini 429 per-minute (mentions billing)", 429,
			`{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.0-flash\nPlease retry in 22.9s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"22s"}]}}`,
			provider.TypeRateLimit, provider.ActionRetry},
		{dGemini, "gemini 429 old message", 429,
			`{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`,
			provider.TypeRateLimit, provider.ActionRetry},
		{dGemini, "gemini limit 0", 429,
			`{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_input_token_count, limit: 0, model: gemini-2.5-pro\nPlease retry in 30.5s.","status":"RESOURCE_EXHAUSTED"}}`,
			provider.TypeQuotaExhausted, provider.ActionDisableProvider},
		{dGemini, "gemini limit 0 in body only", 429,
			`{"error":{"code":429,"message":"Quota exceeded for metric: generate_content_free_tier_requests, limit: 0\nPlease retry in 3s.","status":"RESOURCE_EXHAUSTED"}}`,
			provider.TypeQuotaExhausted, provider.ActionDisableProvider},
		{dGemini, "gemini context", 400,
			`{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`,
			provider.TypeContextLength, provider.ActionFailoverLargerContext},
		{dGemini, "gemini bad key is 400", 400,
			`{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`,
			provider.TypeAuth, provider.ActionDisableProvider},
		{dGemini, "gemini region", 400,
			`{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`,
			provider.TypePermission, provider.ActionDisableProvider},
		{dGemini, "gemini bad argument", 400,
			`{"error":{"code":400,"message":"* GenerateContentRequest.generation_config.temperature: must be between 0 and 2\n","status":"INVALID_ARGUMENT"}}`,
			provider.TypeBadRequest, provider.ActionGiveUp},
		{dGemini, "gemini 403", 403,
			`{"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}}`,
			provider.TypePermission, provider.ActionDisableProvider},
		{dGemini, "gemini 404", 404,
			`{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.","status":"NOT_FOUND"}}`,
			provider.TypeNotFound, provider.ActionFailover},
		{dGemini, "gemini 500", 500,
			`{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`,
			provider.TypeServerError, provider.ActionRetry},
		{dGemini, "gemini 503 overloaded", 503,
			`{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`,
			provider.TypeOverloaded, provider.ActionRetry},
		{dGemini, "gemini blocked prompt", 400,
			`{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]}}`,
			provider.TypeContentFilter, provider.ActionGiveUp},
		{dOpenAI, "openrouter 402", 402,
			`{"error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/credits"}}`,
			provider.TypeQuotaExhausted, provider.ActionDisableProvider},
		{dOpenAI, "openrouter moderation 403", 403,
			`{"error":{"code":403,"message":"openai/gpt-4o requires moderation on OpenRouter. Your input was flagged for \"harassment\".","metadata":{"reasons":["harassment"],"flagged_input":"..."}}}`,
			provider.TypeContentFilter, provider.ActionGiveUp},
		{dOpenAI, "422 validation", 422,
			`{"object":"error","message":{"detail":[{"type":"string_type","loc":["body","messages",0,"content"],"msg":"Input should be a valid string"}]},"type":"invalid_request_message_error"}`,
			provider.TypeBadRequest, provider.ActionGiveUp},
		{dOpenAI, "vllm context", 400,
			`{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400}`,
			provider.TypeContextLength, provider.ActionFailoverLargerContext},
		{dOpenAI, "405", 405,
			``,
			provider.TypeBadRequest, provider.ActionGiveUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae, err := tt.d.complete(t, tt.d.serve(t, tt.status, nil, tt.body))
			if ae.Class.Type != tt.want || ae.Class.Action != tt.action || ae.Class.StatusCode != tt.status {
				t.Fatalf("attached class %s/%s (status %d), want %s/%s", ae.Class.Type, ae.Class.Action, ae.Class.StatusCode, tt.want, tt.action)
			}
			if f := provider.ClassOf(tt.want); ae.Class.Retryable != f.Retryable || ae.Class.Severity != f.Severity {
				t.Errorf("attributes %+v disagree with the fixed attributes of %s", ae.Class, tt.want)
			}
			wrapped := fmt.Errorf("batch: line 7: %w", err)
			c := retry.Classify(wrapped)
			if c.Type != tt.want || c.Action != tt.action || c.StatusCode != tt.status || c.Message != wrapped.Error() {
				t.Errorf("retry.Classify = %+v", c)
			}
		})
	}
}
