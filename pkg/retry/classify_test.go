package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// apiErr builds an *provider.APIError the way an adapter does: status, the provider's error type and
// code lifted from the body, the message, and the raw body.
func apiErr(status int, typ, code, msg, body string) *provider.APIError {
	return &provider.APIError{
		Provider: "p", Model: "m", StatusCode: status,
		Type: typ, Code: code, Message: msg, Body: []byte(body),
	}
}

func TestClassifyProviderBodies(t *testing.T) {
	tests := []struct {
		name   string
		err    *provider.APIError
		want   ErrorType
		action Action
	}{
		// ---- OpenAI ----
		{"openai rpm 429", apiErr(429, "requests", "rate_limit_exceeded",
			"Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.",
			`{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`),
			TypeRateLimit, ActionRetry},
		{"openai tpm 429", apiErr(429, "tokens", "rate_limit_exceeded",
			"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500. Please try again in 3s.",
			`{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500. Please try again in 3s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`),
			TypeRateLimit, ActionRetry},
		{"openai insufficient_quota", apiErr(429, "insufficient_quota", "insufficient_quota",
			"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
			`{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`),
			TypeQuotaExhausted, ActionDisableProvider},
		{"openai spend limit", apiErr(429, "insufficient_quota", "enforced_spend_limit_reached",
			"You have reached your organization's spend limit.",
			`{"error":{"message":"You have reached your organization's spend limit.","type":"insufficient_quota","param":null,"code":"enforced_spend_limit_reached"}}`),
			TypeQuotaExhausted, ActionDisableProvider},
		{"openai request larger than TPM", apiErr(429, "tokens", "rate_limit_exceeded",
			"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 36000. The input or output tokens must be reduced in order to run successfully.",
			`{"error":{"message":"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 36000. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`),
			TypeContextLength, ActionFailoverLargerContext},
		{"openai rpd limit 0", apiErr(429, "requests", "rate_limit_exceeded",
			"Rate limit reached for o1 in organization org-abc on requests per day (RPD): Limit 0, Used 0, Requested 1.",
			`{"error":{"message":"Rate limit reached for o1 in organization org-abc on requests per day (RPD): Limit 0, Used 0, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`),
			TypeQuotaExhausted, ActionDisableProvider},
		{"openai context length", apiErr(400, "invalid_request_error", "context_length_exceeded",
			"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.",
			`{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`),
			TypeContextLength, ActionFailoverLargerContext},
		{"openai bad param", apiErr(400, "invalid_request_error", "",
			"Invalid value for 'temperature': expected a number between 0 and 2.",
			`{"error":{"message":"Invalid value for 'temperature': expected a number between 0 and 2.","type":"invalid_request_error","param":"temperature","code":null}}`),
			TypeBadRequest, ActionGiveUp},
		{"openai max_tokens too large", apiErr(400, "invalid_request_error", "",
			"max_tokens is too large: 20000. This model supports at most 16384 completion tokens, whereas you provided 20000.",
			`{"error":{"message":"max_tokens is too large: 20000. This model supports at most 16384 completion tokens, whereas you provided 20000.","type":"invalid_request_error","param":"max_tokens","code":null}}`),
			TypeBadRequest, ActionGiveUp},
		{"openai invalid prompt", apiErr(400, "invalid_request_error", "invalid_prompt",
			"Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.",
			`{"error":{"message":"Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.","type":"invalid_request_error","param":null,"code":"invalid_prompt"}}`),
			TypeContentFilter, ActionGiveUp},
		{"azure content filter", apiErr(400, "", "content_filter",
			"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
			`{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}`),
			TypeContentFilter, ActionGiveUp},
		{"openai 401", apiErr(401, "invalid_request_error", "invalid_api_key",
			"Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.",
			`{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
			TypeAuth, ActionDisableProvider},
		{"openai 403 region", apiErr(403, "request_forbidden", "unsupported_country_region_territory",
			"Country, region, or territory not supported",
			`{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`),
			TypePermission, ActionDisableProvider},
		{"openai 404 model", apiErr(404, "invalid_request_error", "model_not_found",
			"The model `gpt-9` does not exist or you do not have access to it.",
			`{"error":{"message":"The model `+"`gpt-9`"+` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`),
			TypeNotFound, ActionFailover},
		{"openai 500", apiErr(500, "server_error", "",
			"The server had an error while processing your request. Sorry about that!",
			`{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`),
			TypeServerError, ActionRetry},
		{"openai 503 engine overloaded", apiErr(503, "server_error", "",
			"The engine is currently overloaded, please try again later",
			`{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}`),
			TypeServerError, ActionRetry},
		{"cloudflare 502 html", apiErr(502, "", "", "", `<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>`),
			TypeServerError, ActionRetry},
		{"gateway 504", apiErr(504, "", "", "Gateway Timeout", ``), TypeServerError, ActionRetry},
		{"openai 409", apiErr(409, "", "", "The request could not be completed due to a conflict.", ``), TypeServerError, ActionRetry},
		{"408", apiErr(408, "", "", "Request Timeout", ``), TypeTimeout, ActionRetry},

		// ---- Groq ----
		{"groq tpd 429", apiErr(429, "tokens", "rate_limit_exceeded",
			"Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01` service tier `on_demand` on tokens per day (TPD): Limit 100000, Used 99754, Requested 1236. Please try again in 14m15.36s.",
			`{"error":{"message":"Rate limit reached for model `+"`llama-3.3-70b-versatile`"+` in organization `+"`org_01`"+` service tier `+"`on_demand`"+` on tokens per day (TPD): Limit 100000, Used 99754, Requested 1236. Please try again in 14m15.36s.","type":"tokens","code":"rate_limit_exceeded"}}`),
			TypeRateLimit, ActionRetry},
		{"groq 413 request too large", apiErr(413, "tokens", "rate_limit_exceeded",
			"Request too large for model `llama-3.1-8b-instant` in organization `org_01` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Requested 9120, please reduce your message size and try again.",
			`{"error":{"message":"Request too large for model ...","type":"tokens","code":"rate_limit_exceeded"}}`),
			TypeContextLength, ActionFailoverLargerContext},

		// ---- Anthropic ----
		{"anthropic 429", apiErr(429, "rate_limit_error", "",
			"This request would exceed the rate limit for your organization (abc) of 50,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
			`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (abc) of 50,000 input tokens per minute."},"request_id":"req_011"}`),
			TypeRateLimit, ActionRetry},
		{"anthropic 529", apiErr(529, "overloaded_error", "", "Overloaded",
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}`),
			TypeOverloaded, ActionRetry},
		{"anthropic overloaded_error on 500", apiErr(500, "overloaded_error", "", "Overloaded",
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
			TypeOverloaded, ActionRetry},
		{"anthropic 500", apiErr(500, "api_error", "", "Internal server error",
			`{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`),
			TypeServerError, ActionRetry},
		{"anthropic prompt too long", apiErr(400, "invalid_request_error", "",
			"prompt is too long: 208310 tokens > 200000 maximum",
			`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}`),
			TypeContextLength, ActionFailoverLargerContext},
		{"anthropic input+max_tokens", apiErr(400, "invalid_request_error", "",
			"input length and `max_tokens` exceed context limit: 195000 + 8192 > 200000, decrease input length or `max_tokens` and try again",
			`{"type":"error","error":{"type":"invalid_request_error","message":"input length and `+"`max_tokens`"+` exceed context limit: 195000 + 8192 > 200000, decrease input length or `+"`max_tokens`"+` and try again"}}`),
			TypeContextLength, ActionFailoverLargerContext},
		{"anthropic max_tokens too big", apiErr(400, "invalid_request_error", "",
			"max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-20250514",
			`{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-20250514"}}`),
			TypeBadRequest, ActionGiveUp},
		{"anthropic credit balance", apiErr(400, "invalid_request_error", "",
			"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
			`{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}`),
			TypeQuotaExhausted, ActionDisableProvider},
		{"anthropic billing_error 402", apiErr(402, "billing_error", "", "There is an issue with your billing.",
			`{"type":"error","error":{"type":"billing_error","message":"There is an issue with your billing."}}`),
			TypeQuotaExhausted, ActionDisableProvider},
		{"anthropic 401", apiErr(401, "authentication_error", "", "invalid x-api-key",
			`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`),
			TypeAuth, ActionDisableProvider},
		{"anthropic 403", apiErr(403, "permission_error", "", "Your API key does not have permission to use the specified resource.",
			`{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}`),
			TypePermission, ActionDisableProvider},
		{"anthropic 404", apiErr(404, "not_found_error", "", "model: claude-9",
			`{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}`),
			TypeNotFound, ActionFailover},
		{"anthropic 413", apiErr(413, "request_too_large", "", "Request exceeds the maximum allowed number of bytes.",
			`{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`),
			TypeContextLength, ActionFailoverLargerContext},

		// ---- Gemini ----
		{"gemini 429 per-minute (mentions billing)", apiErr(429, "RESOURCE_EXHAUSTED", "",
			"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.0-flash\nPlease retry in 22.9s.",
			`{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.0-flash\nPlease retry in 22.9s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"22s"}]}}`),
			TypeRateLimit, ActionRetry},
		{"gemini 429 old message", apiErr(429, "RESOURCE_EXHAUSTED", "", "Resource has been exhausted (e.g. check quota).",
			`{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`),
			TypeRateLimit, ActionRetry},
		{"gemini limit 0", apiErr(429, "RESOURCE_EXHAUSTED", "",
			"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_input_token_count, limit: 0, model: gemini-2.5-pro\nPlease retry in 30.5s.",
			`{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_input_token_count, limit: 0, model: gemini-2.5-pro\nPlease retry in 30.5s.","status":"RESOURCE_EXHAUSTED"}}`),
			TypeQuotaExhausted, ActionDisableProvider},
		{"gemini limit 0 in body only", apiErr(429, "RESOURCE_EXHAUSTED", "", "",
			`{"error":{"code":429,"message":"Quota exceeded for metric: generate_content_free_tier_requests, limit: 0\nPlease retry in 3s.","status":"RESOURCE_EXHAUSTED"}}`),
			TypeQuotaExhausted, ActionDisableProvider},
		{"gemini context", apiErr(400, "INVALID_ARGUMENT", "",
			"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
			`{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`),
			TypeContextLength, ActionFailoverLargerContext},
		{"gemini bad key is 400", apiErr(400, "INVALID_ARGUMENT", "",
			"API key not valid. Please pass a valid API key.",
			`{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`),
			TypeAuth, ActionDisableProvider},
		{"gemini region", apiErr(400, "FAILED_PRECONDITION", "",
			"User location is not supported for the API use.",
			`{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`),
			TypePermission, ActionDisableProvider},
		{"gemini bad argument", apiErr(400, "INVALID_ARGUMENT", "",
			"* GenerateContentRequest.generation_config.temperature: must be between 0 and 2\n",
			`{"error":{"code":400,"message":"* GenerateContentRequest.generation_config.temperature: must be between 0 and 2\n","status":"INVALID_ARGUMENT"}}`),
			TypeBadRequest, ActionGiveUp},
		{"gemini 403", apiErr(403, "PERMISSION_DENIED", "", "Your API key was reported as leaked. Please use another API key.",
			`{"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}}`),
			TypePermission, ActionDisableProvider},
		{"gemini 404", apiErr(404, "NOT_FOUND", "", "models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.",
			`{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.","status":"NOT_FOUND"}}`),
			TypeNotFound, ActionFailover},
		{"gemini 500", apiErr(500, "INTERNAL", "", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
			`{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`),
			TypeServerError, ActionRetry},
		{"gemini 503 overloaded", apiErr(503, "UNAVAILABLE", "", "The model is overloaded. Please try again later.",
			`{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`),
			TypeOverloaded, ActionRetry},
		{"gemini blocked prompt", apiErr(400, "", "", "prompt blocked",
			`{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]}}`),
			TypeContentFilter, ActionGiveUp},

		// ---- OpenRouter ----
		{"openrouter 402", apiErr(402, "", "402", "Insufficient credits. Add more using https://openrouter.ai/credits",
			`{"error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/credits"}}`),
			TypeQuotaExhausted, ActionDisableProvider},
		{"openrouter moderation 403", apiErr(403, "", "403", "openai/gpt-4o requires moderation on OpenRouter. Your input was flagged for \"harassment\".",
			`{"error":{"code":403,"message":"openai/gpt-4o requires moderation on OpenRouter. Your input was flagged for \"harassment\".","metadata":{"reasons":["harassment"],"flagged_input":"..."}}}`),
			TypeContentFilter, ActionGiveUp},

		// ---- others ----
		{"422 validation", apiErr(422, "", "", "Input should be a valid string",
			`{"object":"error","message":{"detail":[{"type":"string_type","loc":["body","messages",0,"content"],"msg":"Input should be a valid string"}]},"type":"invalid_request_message_error"}`),
			TypeBadRequest, ActionGiveUp},
		{"vllm context", apiErr(400, "BadRequestError", "", "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
			`{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400}`),
			TypeContextLength, ActionFailoverLargerContext},
		{"405", apiErr(405, "", "", "Method Not Allowed", ``), TypeBadRequest, ActionGiveUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(t *testing.T, err error) {
				t.Helper()
				c := Classify(err)
				if c.Type != tt.want || c.Action != tt.action {
					t.Fatalf("Classify = %s/%s, want %s/%s", c.Type, c.Action, tt.want, tt.action)
				}
				if c.StatusCode != tt.err.StatusCode {
					t.Errorf("StatusCode = %d, want %d", c.StatusCode, tt.err.StatusCode)
				}
				if c.Message != err.Error() {
					t.Errorf("Message = %q, want %q", c.Message, err.Error())
				}
				if c != withFixed(c) {
					t.Errorf("attributes %+v disagree with the fixed attributes of %s", c, c.Type)
				}
			}
			t.Run("direct", func(t *testing.T) { check(t, tt.err) })
			t.Run("wrapped", func(t *testing.T) {
				check(t, fmt.Errorf("batch: line 7: %w", tt.err))
			})
			// An adapter that lifted nothing but the status and body must classify the same.
			t.Run("body only", func(t *testing.T) {
				if len(tt.err.Body) < 20 {
					t.Skip("body carries no signal")
				}
				e := *tt.err
				e.Type, e.Code, e.Message = "", "", ""
				check(t, &e)
			})
		})
	}
}

// withFixed overwrites c's per-type attributes with those of mk(c.Type), keeping the per-error ones.
func withFixed(c Class) Class {
	f := mk(c.Type)
	f.RetryAfter, f.Message, f.StatusCode = c.RetryAfter, c.Message, c.StatusCode
	return f
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyTransportAndContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	urlTimeout := &url.Error{Op: "Post", URL: "https://api.openai.com/v1/chat/completions", Err: timeoutErr{}}
	tests := []struct {
		name string
		err  error
		want ErrorType
	}{
		{"canceled", context.Canceled, TypeCanceled},
		{"canceled wrapped", fmt.Errorf("openai: gpt-4o: %w", ctx.Err()), TypeCanceled},
		{"canceled inside conn-broken APIError",
			&provider.APIError{Provider: "p", ConnBroken: true, Err: &url.Error{Op: "Post", URL: "u", Err: context.Canceled}}, TypeCanceled},
		{"canceled beats a 429 chain", errors.Join(context.Canceled, apiErr(429, "", "", "slow down", "")), TypeCanceled},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), TypeTimeout},
		{"deadline inside APIError", &provider.APIError{Provider: "p", ConnBroken: true, Err: context.DeadlineExceeded}, TypeTimeout},
		{"http client timeout", urlTimeout, TypeTimeout},
		{"os deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), TypeTimeout},
		{"conn broken reset", &provider.APIError{Provider: "p", ConnBroken: true, Err: syscall.ECONNRESET}, TypeNetwork},
		{"conn broken eof", &provider.APIError{Provider: "p", ConnBroken: true, Err: io.ErrUnexpectedEOF}, TypeNetwork},
		{"status 0 with error", &provider.APIError{Provider: "p", Err: errors.New("dial tcp: lookup api.x: no such host")}, TypeNetwork},
		{"conn broken, timeout at the transport", &provider.APIError{Provider: "p", ConnBroken: true, Err: urlTimeout}, TypeTimeout},
		{"malformed", &provider.APIError{Provider: "p", StatusCode: 200, Malformed: true, Err: errors.New("unexpected end of JSON input")}, TypeInvalidResponse},
		{"bare reset", fmt.Errorf("post: %w", syscall.ECONNRESET), TypeNetwork},
		{"bare op error", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, TypeNetwork},
		{"bare dns", &net.DNSError{Err: "no such host", Name: "api.example"}, TypeNetwork},
		{"bare unexpected eof", io.ErrUnexpectedEOF, TypeNetwork},
		{"local encode failure", errors.New("anthropic: tools: unsupported tool type \"x\""), TypeBadRequest},
		{"2xx reported as error", apiErr(204, "", "", "no content", ""), TypeInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Classify(tt.err)
			if c.Type != tt.want {
				t.Fatalf("Classify(%v).Type = %s, want %s", tt.err, c.Type, tt.want)
			}
			if c != withFixed(c) {
				t.Errorf("attributes %+v disagree with the fixed attributes of %s", c, c.Type)
			}
		})
	}
}

func TestClassifyNil(t *testing.T) {
	if c := Classify(nil); c != (Class{}) {
		t.Fatalf("Classify(nil) = %+v, want zero", c)
	}
}

func TestClassifyRetryAfter(t *testing.T) {
	e := apiErr(429, "rate_limit_error", "", "slow down", "")
	e.Limits.RetryAfter = 7 * time.Second
	if got := Classify(e).RetryAfter; got != 7*time.Second {
		t.Errorf("from Limits: RetryAfter = %v, want 7s", got)
	}
	e.RetryAfter = 3 * time.Second
	if got := Classify(e).RetryAfter; got != 3*time.Second {
		t.Errorf("APIError.RetryAfter takes precedence: got %v, want 3s", got)
	}
	o := apiErr(529, "overloaded_error", "", "Overloaded", "")
	o.RetryAfter = 2 * time.Second
	if got := Classify(fmt.Errorf("w: %w", o)).RetryAfter; got != 2*time.Second {
		t.Errorf("overloaded with retry-after: got %v, want 2s", got)
	}
	q := apiErr(429, "insufficient_quota", "insufficient_quota", "quota", "")
	q.RetryAfter = 5 * time.Second
	if c := Classify(q); c.RetryAfter != 0 || c.Retryable {
		t.Errorf("quota: %+v, want not retryable and no RetryAfter", c)
	}
	n := apiErr(429, "", "", "", "")
	n.RetryAfter = -time.Second
	if got := Classify(n).RetryAfter; got != 0 {
		t.Errorf("negative RetryAfter: got %v, want 0", got)
	}
}

func TestGeminiLimitZeroRegexp(t *testing.T) {
	for s, want := range map[string]bool{
		"limit: 0, model: x":        true,
		"limit: 0":                  true,
		`limit: 0\nplease retry`:    true,
		"limit 0, used 0":           true,
		"limit: 0)":                 true,
		"limit: 10, model: x":       false,
		"limit: 0.5":                false,
		"limit: 05":                 false,
		"limit: 0s":                 false,
		"ratelimit: 0":              false,
		"limit: 100000, used 99754": false,
	} {
		if got := geminiLimitZero.MatchString(s); got != want {
			t.Errorf("%q: match = %v, want %v", s, got, want)
		}
	}
}

func TestLaneFailure(t *testing.T) {
	lane := map[ErrorType]bool{TypeServerError: true, TypeOverloaded: true, TypeTimeout: true, TypeNetwork: true, TypeInvalidResponse: true}
	for _, typ := range allTypes {
		if got := mk(typ).LaneFailure(); got != lane[typ] {
			t.Errorf("%s: LaneFailure = %v, want %v", typ, got, lane[typ])
		}
	}
	if (Class{}).LaneFailure() {
		t.Error("zero Class is a lane failure")
	}
}

var allTypes = []ErrorType{TypeRateLimit, TypeOverloaded, TypeServerError, TypeTimeout, TypeNetwork, TypeAuth,
	TypePermission, TypeQuotaExhausted, TypeBadRequest, TypeContextLength, TypeContentFilter, TypeNotFound,
	TypeCanceled, TypeInvalidResponse}

// TestFixedAttributes pins the contract table: retryable types retry on the same lane, the others never.
func TestFixedAttributes(t *testing.T) {
	want := map[ErrorType]struct {
		retry bool
		sev   Severity
		act   Action
	}{
		TypeRateLimit:       {true, SeverityLow, ActionRetry},
		TypeOverloaded:      {true, SeverityLow, ActionRetry},
		TypeServerError:     {true, SeverityMedium, ActionRetry},
		TypeTimeout:         {true, SeverityLow, ActionRetry},
		TypeNetwork:         {true, SeverityLow, ActionRetry},
		TypeInvalidResponse: {true, SeverityMedium, ActionRetry},
		TypeAuth:            {false, SeverityHigh, ActionDisableProvider},
		TypePermission:      {false, SeverityHigh, ActionDisableProvider},
		TypeQuotaExhausted:  {false, SeverityHigh, ActionDisableProvider},
		TypeNotFound:        {false, SeverityMedium, ActionFailover},
		TypeContextLength:   {false, SeverityMedium, ActionFailoverLargerContext},
		TypeBadRequest:      {false, SeverityMedium, ActionGiveUp},
		TypeContentFilter:   {false, SeverityMedium, ActionGiveUp},
		TypeCanceled:        {false, SeverityLow, ActionGiveUp},
	}
	if len(want) != len(allTypes) {
		t.Fatalf("table covers %d types, want %d", len(want), len(allTypes))
	}
	for _, typ := range allTypes {
		c, w := mk(typ), want[typ]
		if c.Retryable != w.retry || c.Severity != w.sev || c.Action != w.act {
			t.Errorf("%s: got %v/%s/%s, want %v/%s/%s", typ, c.Retryable, c.Severity, c.Action, w.retry, w.sev, w.act)
		}
		if strings.ToLower(string(typ)) != string(typ) || strings.Contains(string(typ), " ") {
			t.Errorf("%q is not a snake_case result-line value", typ)
		}
	}
}
