package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// apiError is one error response, described for all three wire formats at once; write picks the
// fields of the request's API.
type apiError struct {
	status int
	msg    string

	oaType, oaCode, oaParam string // OpenAI error.type / error.code / error.param ("" = null)
	anStatus                int    // Anthropic status when it differs from status (0 = same)
	anType                  string // Anthropic error.type
	gStatus                 int    // Gemini status when it differs from status (0 = same)
	gCode                   string // Gemini error.status (google.rpc.Code name)
	gDetails                []any  // Gemini error.details

	retryAfter time.Duration // > 0: retry-after header(s) and, for Gemini, RetryInfo
	limits     *verdict      // rate-limit headers to send with the error, if any
}

func (e *apiError) statusFor(a api) int {
	switch {
	case a == apiAnthropic && e.anStatus != 0:
		return e.anStatus
	case a == apiGemini && e.gStatus != 0:
		return e.gStatus
	}
	return e.status
}

// ceilSeconds rounds d up to whole seconds (at least 1 for a positive d), so a client that waits the
// advertised time is never early.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// fmtReset formats d the way OpenAI's x-ratelimit-reset-* headers do ("120ms", "1.2s", "6m0s"),
// rounded up to the millisecond.
func fmtReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return ((d + time.Millisecond - 1) / time.Millisecond * time.Millisecond).String()
}

// resetAt is an Anthropic reset instant: now+d rounded up to the second, in RFC 3339.
func resetAt(now time.Time, d time.Duration) string {
	t := now.Add(d).UTC()
	if tt := t.Truncate(time.Second); tt.Before(t) {
		t = tt.Add(time.Second)
	}
	return t.Format(time.RFC3339)
}

// setLimitHeaders writes the rate-limit headers of API a for the limiter state v observed at now.
// OpenAI: x-ratelimit-{limit,remaining,reset}-{requests,tokens} (RPM and TPM). Anthropic:
// anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}. Gemini sends none, as the real API.
// A limit that is not enforced (0) gets no headers.
func setLimitHeaders(h http.Header, a api, v *verdict, now time.Time) {
	switch a {
	case apiOpenAI:
		if v.reqLimit > 0 {
			h["X-Ratelimit-Limit-Requests"] = []string{strconv.Itoa(v.reqLimit)}
			h["X-Ratelimit-Remaining-Requests"] = []string{strconv.Itoa(v.reqRemaining)}
			h["X-Ratelimit-Reset-Requests"] = []string{fmtReset(v.reqReset)}
		}
		if v.tokLimit > 0 {
			h["X-Ratelimit-Limit-Tokens"] = []string{strconv.Itoa(v.tokLimit)}
			h["X-Ratelimit-Remaining-Tokens"] = []string{strconv.Itoa(v.tokRemaining)}
			h["X-Ratelimit-Reset-Tokens"] = []string{fmtReset(v.tokReset)}
		}
	case apiAnthropic:
		if v.reqLimit > 0 {
			h["Anthropic-Ratelimit-Requests-Limit"] = []string{strconv.Itoa(v.reqLimit)}
			h["Anthropic-Ratelimit-Requests-Remaining"] = []string{strconv.Itoa(v.reqRemaining)}
			h["Anthropic-Ratelimit-Requests-Reset"] = []string{resetAt(now, v.reqReset)}
		}
		if v.tokLimit > 0 {
			h["Anthropic-Ratelimit-Tokens-Limit"] = []string{strconv.Itoa(v.tokLimit)}
			h["Anthropic-Ratelimit-Tokens-Remaining"] = []string{strconv.Itoa(v.tokRemaining)}
			h["Anthropic-Ratelimit-Tokens-Reset"] = []string{resetAt(now, v.tokReset)}
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sim: marshal response: %v", err)) // only plain structs and strings: cannot fail
	}
	return b
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeError writes e in API a's real error shape, with its headers.
func writeError(w http.ResponseWriter, a api, e *apiError, now time.Time, hideLimits bool) {
	h := w.Header()
	if e.limits != nil && !hideLimits {
		setLimitHeaders(h, a, e.limits, now)
	}
	if e.retryAfter > 0 && a != apiGemini {
		h["Retry-After"] = []string{strconv.FormatInt(ceilSeconds(e.retryAfter), 10)}
		if a == apiOpenAI {
			ms := (e.retryAfter + time.Millisecond - 1) / time.Millisecond
			h["Retry-After-Ms"] = []string{strconv.FormatInt(int64(ms), 10)}
		}
	}
	status := e.statusFor(a)
	writeJSON(w, status, errorJSON(a, e, status))
}

// errorJSON is e's body in API a's real error shape for HTTP status.
func errorJSON(a api, e *apiError, status int) []byte {
	var body []byte
	switch a {
	case apiOpenAI:
		typ := e.oaType
		if typ == "" {
			typ = "invalid_request_error"
		}
		body = mustJSON(map[string]any{"error": map[string]any{
			"message": e.msg, "type": typ, "param": nullable(e.oaParam), "code": nullable(e.oaCode)}})
	case apiAnthropic:
		typ := e.anType
		if typ == "" {
			typ = "invalid_request_error"
		}
		body = mustJSON(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": e.msg}})
	case apiGemini:
		details := e.gDetails
		if e.retryAfter > 0 {
			details = append(details[:len(details):len(details)], map[string]any{
				"@type":      "type.googleapis.com/google.rpc.RetryInfo",
				"retryDelay": strconv.FormatInt(ceilSeconds(e.retryAfter), 10) + "s",
			})
		}
		ge := map[string]any{"code": status, "message": e.msg, "status": e.gCode}
		if len(details) > 0 {
			ge["details"] = details
		}
		body = mustJSON(map[string]any{"error": ge})
	}
	return body
}

// Errors that do not depend on the limiter.

func errBadRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: msg, gCode: "INVALID_ARGUMENT"}
}

func errNotFound(a api, model string) *apiError {
	msg := fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model)
	switch a {
	case apiAnthropic:
		msg = "model: " + model
	case apiGemini:
		msg = fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for generateContent.", model)
	}
	return &apiError{status: http.StatusNotFound, msg: msg, oaCode: "model_not_found",
		anType: "not_found_error", gCode: "NOT_FOUND"}
}

func errAuth(a api) *apiError {
	msg := "Incorrect API key provided: sk-sim****. You can find your API key at https://platform.openai.com/account/api-keys."
	switch a {
	case apiAnthropic:
		msg = "invalid x-api-key"
	case apiGemini:
		msg = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
	}
	return &apiError{status: http.StatusUnauthorized, msg: msg, oaCode: "invalid_api_key",
		anType: "authentication_error", gCode: "UNAUTHENTICATED"}
}

func errContext(a api, model string, window, prompt, maxTokens int) *apiError {
	msg := fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens "+
		"(%d in the messages, %d in the completion). Please reduce the length of the messages or completion.",
		window, prompt+maxTokens, prompt, maxTokens)
	switch a {
	case apiAnthropic:
		msg = fmt.Sprintf("prompt is too long: %d tokens > %d maximum", prompt+maxTokens, window)
	case apiGemini:
		msg = fmt.Sprintf("The input token count (%d) exceeds the maximum number of tokens allowed (%d).", prompt+maxTokens, window)
	}
	return &apiError{status: http.StatusBadRequest, msg: msg, oaParam: "messages",
		oaCode: "context_length_exceeded", gCode: "INVALID_ARGUMENT"}
}

func errMaxTokens(a api, model string, requested, limit int) *apiError {
	msg := fmt.Sprintf("max_tokens is too large: %d. This model supports at most %d completion tokens, whereas you provided %d.",
		requested, limit, requested)
	switch a {
	case apiAnthropic:
		msg = fmt.Sprintf("max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s", requested, limit, model)
	case apiGemini:
		msg = fmt.Sprintf("Unable to submit request because it has a maxOutputTokens value of %d but the supported range is from 1 (inclusive) to %d (exclusive). Update the value and try again.", requested, limit+1)
	}
	return &apiError{status: http.StatusBadRequest, msg: msg, oaParam: "max_tokens", oaCode: "invalid_value", gCode: "INVALID_ARGUMENT"}
}

func errServer(a api) *apiError {
	msg := "The server had an error while processing your request. Sorry about that!"
	switch a {
	case apiAnthropic:
		msg = "Internal server error"
	case apiGemini:
		msg = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
	}
	return &apiError{status: http.StatusInternalServerError, msg: msg, oaType: "server_error", anType: "api_error", gCode: "INTERNAL"}
}

func errUnavailable(a api) *apiError {
	msg := "The server is overloaded or not ready yet."
	switch a {
	case apiAnthropic:
		msg = "Service unavailable"
	case apiGemini:
		msg = "The service is currently unavailable."
	}
	return &apiError{status: http.StatusServiceUnavailable, msg: msg, oaType: "server_error", anType: "api_error", gCode: "UNAVAILABLE"}
}

// StatusOverloaded is Anthropic's non-standard "overloaded" HTTP status.
const StatusOverloaded = 529

// errOverloaded is what each API sends when it is overloaded: Anthropic 529 overloaded_error,
// OpenAI 503 "engine overloaded", Gemini 503 UNAVAILABLE "model is overloaded".
func errOverloaded(a api) *apiError {
	msg := "The engine is currently overloaded, please try again later."
	switch a {
	case apiAnthropic:
		msg = "Overloaded"
	case apiGemini:
		msg = "The model is overloaded. Please try again later."
	}
	return &apiError{status: http.StatusServiceUnavailable, anStatus: StatusOverloaded, msg: msg,
		oaType: "server_error", anType: "overloaded_error", gCode: "UNAVAILABLE"}
}

// errQuota is the never-retry "out of money" error: OpenAI 429 insufficient_quota, Anthropic 400
// "credit balance is too low", Gemini 429 RESOURCE_EXHAUSTED with a quota of limit 0.
func errQuota(a api, model string) *apiError {
	msg := "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
	var details []any
	switch a {
	case apiAnthropic:
		msg = "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."
	case apiGemini:
		msg = "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n" +
			"* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: " + model
		details = []any{quotaFailure(model, "generate_content_free_tier_requests", "GenerateRequestsPerDayPerProjectPerModel-FreeTier", 0)}
	}
	return &apiError{status: http.StatusTooManyRequests, anStatus: http.StatusBadRequest, msg: msg,
		oaType: "insufficient_quota", oaCode: "insufficient_quota", anType: "invalid_request_error",
		gCode: "RESOURCE_EXHAUSTED", gDetails: details}
}

func quotaFailure(model, metric, id string, value int) map[string]any {
	return map[string]any{
		"@type": "type.googleapis.com/google.rpc.QuotaFailure",
		"violations": []any{map[string]any{
			"quotaMetric":     "generativelanguage.googleapis.com/" + metric,
			"quotaId":         id,
			"quotaDimensions": map[string]string{"location": "global", "model": model},
			"quotaValue":      strconv.Itoa(value),
		}},
	}
}

// errConcurrency rejects a request beyond sim.max_concurrency: 429 (OpenAI, Gemini) or 529
// overloaded (Anthropic), without a retry-after since the simulator cannot know when a slot frees.
func errConcurrency(a api, model string, limit int) *apiError {
	msg := fmt.Sprintf("Too many concurrent requests for %s: limit %d. Please try again later.", model, limit)
	if a == apiAnthropic {
		msg = "Overloaded"
	}
	return &apiError{status: http.StatusTooManyRequests, anStatus: StatusOverloaded, msg: msg,
		oaType: "requests", oaCode: "rate_limit_exceeded", anType: "overloaded_error", gCode: "RESOURCE_EXHAUSTED"}
}

// errRate is the 429 for a limiter rejection, carrying the limit headers and an exact retry-after.
func errRate(a api, model string, v *verdict) *apiError {
	e := &apiError{status: http.StatusTooManyRequests, oaCode: "rate_limit_exceeded", anType: "rate_limit_error",
		gCode: "RESOURCE_EXHAUSTED", retryAfter: v.wait, limits: v}
	var unit, oaUnit, metric, quotaID string
	limit, requested := v.limit, 1
	switch v.reason {
	case reasonRequests:
		e.oaType, unit, oaUnit = "requests", "requests per minute", "requests per min (RPM)"
		metric, quotaID = "generate_content_requests", "GenerateRequestsPerMinutePerProjectPerModel"
	case reasonDay:
		e.oaType, unit, oaUnit = "requests", "requests per day", "requests per day (RPD)"
		metric, quotaID = "generate_content_requests_per_day", "GenerateRequestsPerDayPerProjectPerModel"
	default: // tokens, too large
		e.oaType, unit, oaUnit, requested = "tokens", "tokens per minute", "tokens per min (TPM)", v.requested
		metric, quotaID = "generate_content_input_token_count", "GenerateContentInputTokensPerModelPerMinute"
	}
	switch a {
	case apiOpenAI:
		if v.reason == reasonTooLarge {
			e.msg = fmt.Sprintf("Request too large for %s in organization org-sim on %s: Limit %d, Requested %d. "+
				"The input or output tokens must be reduced in order to run successfully.", model, oaUnit, limit, requested)
		} else {
			e.msg = fmt.Sprintf("Rate limit reached for %s in organization org-sim on %s: Limit %d, Used %d, Requested %d. "+
				"Please try again in %s. Visit https://platform.openai.com/account/rate-limits to learn more.",
				model, oaUnit, limit, v.used, requested, fmtReset(v.wait))
		}
	case apiAnthropic:
		e.msg = fmt.Sprintf("This request would exceed the rate limit for your organization of %d %s. "+
			"For details, refer to: https://docs.claude.com/en/api/rate-limits.", limit, unit)
	case apiGemini:
		e.msg = fmt.Sprintf("You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"+
			"* Quota exceeded for metric: generativelanguage.googleapis.com/%s, limit: %d, model: %s", metric, limit, model)
		if v.wait > 0 {
			e.msg += fmt.Sprintf("\nPlease retry in %s.", fmtReset(v.wait))
		}
		e.gDetails = []any{quotaFailure(model, metric, quotaID, limit)}
	}
	return e
}

// errRandomRate is the 429 of faults.rate_limit: a rate_limit_exceeded that no limit explains, with
// retryAfter (0 = none) and, when the caller sends them, the limit headers of v (budget left).
func errRandomRate(a api, model string, v *verdict, retryAfter time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, oaType: "requests", oaCode: "rate_limit_exceeded",
		anType: "rate_limit_error", gCode: "RESOURCE_EXHAUSTED", retryAfter: retryAfter, limits: v,
		msg: fmt.Sprintf("Rate limit reached for %s: the server is busy, please try again shortly.", model)}
}

// success is one answered request.
type success struct {
	id          string
	model       string
	created     int64
	text        string
	prompt, out int
	capped      bool
}

func (s *success) body(a api) []byte {
	switch a {
	case apiAnthropic:
		stop := "end_turn"
		if s.capped {
			stop = "max_tokens"
		}
		return mustJSON(&anthropicResponse{
			ID: "msg_" + s.id, Type: "message", Role: "assistant", Model: s.model,
			Content:    []anthropicText{{Type: "text", Text: s.text}},
			StopReason: stop, Usage: anthropicUsage{InputTokens: s.prompt, OutputTokens: s.out},
		})
	case apiGemini:
		finish := "STOP"
		if s.capped {
			finish = "MAX_TOKENS"
		}
		return mustJSON(&geminiResponse{
			Candidates: []geminiCandidate{{Content: geminiOutContent{Parts: []geminiText{{Text: s.text}}, Role: "model"},
				FinishReason: finish}},
			UsageMetadata: geminiUsage{PromptTokenCount: s.prompt, CandidatesTokenCount: s.out, TotalTokenCount: s.prompt + s.out},
			ModelVersion:  s.model, ResponseID: s.id,
		})
	}
	finish := "stop"
	if s.capped {
		finish = "length"
	}
	return mustJSON(&openaiResponse{
		ID: "chatcmpl-" + s.id, Object: "chat.completion", Created: s.created, Model: s.model,
		Choices: []openaiChoice{{Message: openaiMessage{Role: "assistant", Content: s.text}, FinishReason: finish}},
		Usage:   openaiUsage{PromptTokens: s.prompt, CompletionTokens: s.out, TotalTokens: s.prompt + s.out},
	})
}

type openaiResponse struct {
	ID                string         `json:"id"`
	Object            string         `json:"object"`
	Created           int64          `json:"created"`
	Model             string         `json:"model"`
	Choices           []openaiChoice `json:"choices"`
	Usage             openaiUsage    `json:"usage"`
	SystemFingerprint *string        `json:"system_fingerprint"`
}

type openaiChoice struct {
	Index        int           `json:"index"`
	Message      openaiMessage `json:"message"`
	Logprobs     *struct{}     `json:"logprobs"`
	FinishReason string        `json:"finish_reason"`
}

type openaiMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type openaiUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type anthropicResponse struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Role         string          `json:"role"`
	Model        string          `json:"model"`
	Content      []anthropicText `json:"content"`
	StopReason   string          `json:"stop_reason"`
	StopSequence *string         `json:"stop_sequence"`
	Usage        anthropicUsage  `json:"usage"`
}

type anthropicText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

type geminiResponse struct {
	Candidates    []geminiCandidate `json:"candidates"`
	UsageMetadata geminiUsage       `json:"usageMetadata"`
	ModelVersion  string            `json:"modelVersion"`
	ResponseID    string            `json:"responseId"`
}

type geminiCandidate struct {
	Content      geminiOutContent `json:"content"`
	FinishReason string           `json:"finishReason"`
	Index        int              `json:"index"`
}

type geminiOutContent struct {
	Parts []geminiText `json:"parts"`
	Role  string       `json:"role"`
}

type geminiText struct {
	Text string `json:"text"`
}

type geminiUsage struct {
	PromptTokenCount     int `json:"promptTokenCount"`
	CandidatesTokenCount int `json:"candidatesTokenCount"`
	TotalTokenCount      int `json:"totalTokenCount"`
}
