package adapters_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
	"github.com/llmbatch/llmbatch/pkg/retry"
)

// hostileBodies are 200 answers no adapter may turn into a success: not JSON objects, empty
// objects, error envelopes, shapes missing or mistyping the fields of an API, and the valid shapes of
// the other two APIs.
var hostileBodies = []struct{ name, body string }{
	{"empty", ``},
	{"whitespace", " \n\t"},
	{"null", `null`},
	{"empty object", `{}`},
	{"empty array", `[]`},
	{"array of answers", `[` + openaiOK + `]`},
	{"string", `"The capital of France is Paris."`},
	{"number", `42`},
	{"true", `true`},
	{"html", `<html><body><h1>200 OK</h1>upstream says hi</body></html>`},
	{"truncated", `{"choices":[{"message":{"content":"hi"`},
	{"openai shape", openaiOK},
	{"anthropic shape", anthropicOK},
	{"gemini shape", geminiOK},
	{"legacy completions shape", `{"id":"cmpl-1","object":"text_completion","choices":[{"text":"Paris","finish_reason":"stop"}]}`},
	{"openai error envelope", `{"error":{"message":"Provider returned error","code":502}}`},
	{"anthropic error envelope", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
	{"gemini error envelope", `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`},
	{"choices null", `{"choices":null}`},
	{"choices empty", `{"object":"chat.completion","choices":[]}`},
	{"choices an object", `{"choices":{"0":{"message":{"content":"x"}}}}`},
	{"choice without message", `{"choices":[{"index":0,"finish_reason":"stop"}]}`},
	{"message without content", `{"choices":[{"message":{"role":"assistant"},"finish_reason":"stop"}]}`},
	{"content null", `{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"stop"}]}`},
	{"content a number", `{"choices":[{"message":{"content":42},"finish_reason":"stop"}]}`},
	{"usage a string", `{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":"12"}`},
	{"message type without content", `{"id":"msg_1","type":"message","role":"assistant","stop_reason":"end_turn"}`},
	{"message content null", `{"type":"message","content":null,"stop_reason":"end_turn"}`},
	{"message content a string", `{"type":"message","content":"Paris","stop_reason":"end_turn"}`},
	{"message of another type", `{"type":"completion","completion":"Paris"}`},
	{"message usage mistyped", `{"type":"message","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":"1"}}`},
	{"candidates empty", `{"candidates":[]}`},
	{"candidates an object", `{"candidates":{"content":{"parts":[{"text":"x"}]}}}`},
	{"candidate without content", `{"candidates":[{"finishReason":"STOP","index":0}]}`},
	{"candidate content without parts", `{"candidates":[{"content":{"role":"model"},"finishReason":"STOP"}]}`},
	{"candidate parts empty", `{"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"STOP"}]}`},
	{"candidate parts a string", `{"candidates":[{"content":{"parts":"Paris"}}]}`},
}

// TestHostileSuccessBodies runs every hostile body against all three adapters: each must be a
// retryable invalid_response naming the provider and model, keeping the rate limits of the headers
// and the body's head, never a success with empty content.
func TestHostileSuccessBodies(t *testing.T) {
	hdr := http.Header{"X-Ratelimit-Limit-Requests": {"10"}, "X-Ratelimit-Remaining-Requests": {"3"}}
	for _, d := range dialects() {
		for _, hb := range hostileBodies {
			if hb.body == d.ok {
				continue // the dialect's own valid shape
			}
			t.Run(d.name+"/"+hb.name, func(t *testing.T) {
				ae, err := d.complete(t, d.serve(t, http.StatusOK, hdr, hb.body))
				if !ae.Malformed || ae.StatusCode != 200 || string(ae.Body) != hb.body {
					t.Errorf("apiErr = %+v", ae)
				}
				if ae.Class.Type != provider.TypeInvalidResponse || !ae.Class.Retryable {
					t.Errorf("class = %+v, want retryable invalid_response", ae.Class)
				}
				if c := retry.Classify(err); c.Type != retry.TypeInvalidResponse || c.Action != retry.ActionRetry {
					t.Errorf("retry.Classify = %+v", c)
				}
				if !strings.HasPrefix(err.Error(), d.name+": m: malformed response: ") {
					t.Errorf("Error() = %q", err)
				}
				if d.name == "openai" && ae.Limits.RemainingRequests != 3 {
					t.Errorf("limits = %+v", ae.Limits)
				}
			})
		}
	}
}

// TestValidBodiesStillSucceed pins the other side: the smallest valid answer of each API, and the
// legitimate answers without text (tool calls only, a refusal, a filtered or blocked prompt).
func TestValidBodiesStillSucceed(t *testing.T) {
	cases := []struct {
		d      dialect
		body   string
		finish string
	}{
		{dOpenAI, openaiOK, "stop"},
		{dOpenAI, `{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`, "tool_calls"},
		{dOpenAI, `{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`, "stop"},
		{dOpenAI, `{"choices":[{"message":{"content":null},"finish_reason":"content_filter"}]}`, "content_filter"},
		{dAnthropic, anthropicOK, "stop"},
		{dAnthropic, `{"type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":{}}],"stop_reason":"tool_use"}`, "tool_calls"},
		{dGemini, geminiOK, "stop"},
		{dGemini, `{"candidates":[{"finishReason":"SAFETY"}]}`, "content_filter"},
		{dGemini, `{"promptFeedback":{"blockReason":"SAFETY"}}`, "content_filter"},
	}
	for _, tc := range cases {
		resp, err := tc.d.serve(t, http.StatusOK, nil, tc.body).Complete(t.Context(), hello("m"))
		if err != nil || resp.FinishReason != tc.finish {
			t.Errorf("%s %s: resp=%+v err=%v", tc.d.name, tc.body, resp, err)
		}
	}
}

// TestKeyNeverInErrors: a server that echoes the authentication headers back in its error body
// never gets the key into the error, its message or the kept body, for any adapter.
func TestKeyNeverInErrors(t *testing.T) {
	echo := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent := r.Header.Get("Authorization") + r.Header.Get("X-Api-Key") + r.Header.Get("X-Goog-Api-Key")
		body := `{"error":{"type":"authentication_error","message":"invalid key: ` + sent + `"}}`
		return replay.Response(r, &replay.Recorded{StatusCode: 401, Status: "401 Unauthorized", Header: http.Header{}, Body: []byte(body)}), nil
	})
	for _, d := range dialects() {
		a := replay.MustNew(t, d.new, provider.Options{Name: d.name, APIKey: testKey, Client: &http.Client{Transport: echo}})
		ae, _ := d.complete(t, a) // complete fails the test if the key is in the error or body
		if !strings.Contains(ae.Message, "[redacted]") || ae.Class.Type != provider.TypeAuth {
			t.Errorf("%s: apiErr = %+v", d.name, ae)
		}
	}
}
