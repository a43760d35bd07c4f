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

// mk is the Class of a type with its fixed attributes only.
func mk(t ErrorType) Class { return provider.ClassOf(t) }

// withFixed overwrites c's per-type attributes with those of mk(c.Type), keeping the per-error ones.
func withFixed(c Class) Class {
	f := mk(c.Type)
	f.RetryAfter, f.Message, f.StatusCode = c.RetryAfter, c.Message, c.StatusCode
	return f
}

// TestClassifyReadsTheAttachedClass: the class the adapter attached wins over anything the status or
// body might suggest, so nothing is parsed twice (the provider-specific tables run through the real
// adapters in pkg/provider/adapters).
func TestClassifyReadsTheAttachedClass(t *testing.T) {
	tests := []struct {
		name string
		err  *provider.APIError
		want ErrorType
	}{
		{"quota on a 429", withClass(apiErr(429, "insufficient_quota", "insufficient_quota", "quota", `{"error":{"code":"insufficient_quota"}}`), TypeQuotaExhausted), TypeQuotaExhausted},
		{"overloaded on a 500", withClass(apiErr(500, "", "", "", `{"type":"error","error":{"type":"overloaded_error"}}`), TypeOverloaded), TypeOverloaded},
		{"body words ignored", withClass(apiErr(400, "", "", "", `"insufficient_quota" limit: 0 model is overloaded`), TypeBadRequest), TypeBadRequest},
		{"no class: status alone", apiErr(400, "", "", "", `"insufficient_quota"`), TypeBadRequest},
		{"no class: 529", apiErr(529, "", "", "", ``), TypeOverloaded},
		{"no class: 402", apiErr(402, "", "", "", ``), TypeQuotaExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, err := range []error{tt.err, fmt.Errorf("batch: line 7: %w", tt.err)} {
				c := Classify(err)
				if c.Type != tt.want || c.StatusCode != tt.err.StatusCode || c.Message != err.Error() {
					t.Fatalf("Classify(%v) = %+v, want type %s", err, c, tt.want)
				}
				if c != withFixed(c) {
					t.Errorf("attributes %+v disagree with the fixed attributes of %s", c, c.Type)
				}
			}
		})
	}
}

func withClass(e *provider.APIError, t ErrorType) *provider.APIError {
	e.Class = mk(t)
	e.Class.StatusCode = e.StatusCode
	return e
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
	q := withClass(apiErr(429, "insufficient_quota", "insufficient_quota", "quota", ""), TypeQuotaExhausted)
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
