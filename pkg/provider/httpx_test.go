package provider_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
)

const secret = "sk-test-SECRET-0123456789abcdef"

func fixedNow() time.Time { return t0 }

func newCall(url string) *provider.Call {
	h := provider.NewHeader(map[string]string{"X-Extra": "1"})
	h.Set("Authorization", "Bearer "+secret)
	return &provider.Call{Provider: "prov", Model: "m-1", URL: url, Header: h, Body: []byte(`{"a":1}`), Secret: secret}
}

func asAPIError(t *testing.T, err error) *provider.APIError {
	t.Helper()
	var ae *provider.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	if strings.Contains(err.Error(), secret) || bytes.Contains(ae.Body, []byte(secret)) || strings.Contains(ae.Message, secret) {
		t.Fatalf("API key leaked: err=%.200q body=%.200q", err.Error(), ae.Body)
	}
	return ae
}

func TestCallSuccessSendsHeadersAndStampsLimits(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		return replay.Response(r, &replay.Recorded{StatusCode: 200, Status: "200 OK",
			Header: hdr("x-ratelimit-limit-requests", "10", "x-ratelimit-remaining-requests", "9"), Body: []byte(`{"ok":true}`)}), nil
	})
	res, err := newCall("http://api.test/v1/x").Do(context.Background(), &http.Client{Transport: rt}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.Header.Get("Content-Type") != "application/json" ||
		got.Header.Get("X-Extra") != "1" || got.Header.Get("User-Agent") != provider.UserAgent {
		t.Errorf("request: %s %v", got.Method, got.Header)
	}
	if string(gotBody) != `{"a":1}` {
		t.Errorf("body sent = %s", gotBody)
	}
	if string(res.Body) != `{"ok":true}` || res.StatusCode != 200 {
		t.Errorf("result = %d %s", res.StatusCode, res.Body)
	}
	if !res.Limits.ObservedAt.Equal(t0) || res.Limits.RemainingRequests != 9 || !res.Limits.HasRequests {
		t.Errorf("limits = %+v", res.Limits)
	}
}

func TestCallStatusErrorRedactsAndCaps(t *testing.T) {
	// A misbehaving gateway echoes the key in a huge HTML body.
	body := "<html><h1>502 Bad Gateway</h1> upstream rejected key " + secret + strings.Repeat("x", 3*provider.MaxErrorBody) + "</html>"
	rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		return replay.Response(r, &replay.Recorded{StatusCode: 502, Status: "502 Bad Gateway",
			Header: hdr("retry-after", "4"), Body: []byte(body)}), nil
	})
	_, err := newCall("http://api.test/v1/x").Do(context.Background(), &http.Client{Transport: rt}, fixedNow)
	ae := asAPIError(t, err)
	if ae.StatusCode != 502 || ae.ConnBroken || ae.Malformed {
		t.Errorf("apiErr = %+v", ae)
	}
	if len(ae.Body) != provider.MaxErrorBody {
		t.Errorf("body kept = %d bytes, want %d", len(ae.Body), provider.MaxErrorBody)
	}
	if !bytes.Contains(ae.Body, []byte("[redacted]")) {
		t.Errorf("body should show the redaction: %.120s", ae.Body)
	}
	if !strings.HasPrefix(ae.Message, "Bad Gateway: <html><h1>502 Bad Gateway</h1>") || len(ae.Message) > 250 {
		t.Errorf("fallback message = %q", ae.Message)
	}
	if ae.RetryAfter != 4*time.Second || ae.Limits.RetryAfter != 4*time.Second || !ae.Limits.ObservedAt.Equal(t0) {
		t.Errorf("retry-after = %v, limits %+v", ae.RetryAfter, ae.Limits)
	}
	if !strings.HasPrefix(err.Error(), "prov: m-1: HTTP 502: ") {
		t.Errorf("Error() = %.80q", err.Error())
	}
}

func TestCallParseErrorBodyRetryAfterUnlessHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"body delay used without header", http.Header{}, 7 * time.Second},
		{"header wins", hdr("retry-after", "2"), 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
				return replay.Response(r, &replay.Recorded{StatusCode: 429, Status: "429 Too Many Requests", Header: tc.header, Body: []byte(`{}`)}), nil
			})
			c := newCall("http://api.test/v1/x")
			c.ParseError = func(status int, _ []byte) provider.ErrorInfo {
				return provider.ErrorInfo{Type: "rate", Code: "c", Message: "slow down", RetryAfter: 7 * time.Second}
			}
			_, err := c.Do(context.Background(), &http.Client{Transport: rt}, fixedNow)
			ae := asAPIError(t, err)
			if ae.Type != "rate" || ae.Code != "c" || ae.Message != "slow down" || ae.RetryAfter != tc.want || ae.Limits.RetryAfter != tc.want {
				t.Errorf("apiErr = %+v", ae)
			}
		})
	}
}

func TestCallTransportErrorIsConnBrokenAndRedacted(t *testing.T) {
	rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		// A transport whose error text happens to contain the key.
		return nil, errors.Join(io.ErrUnexpectedEOF, errors.New("proxy said: bad token "+secret))
	})
	_, err := newCall("http://api.test/v1/x").Do(context.Background(), &http.Client{Transport: rt}, fixedNow)
	ae := asAPIError(t, err)
	if ae.StatusCode != 0 || !ae.ConnBroken || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("apiErr = %+v", ae)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("Error() = %q", err)
	}
}

func TestCallCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, r.Context().Err()
	})
	_, err := newCall("http://api.test/v1/x").Do(ctx, &http.Client{Transport: rt}, fixedNow)
	ae := asAPIError(t, err)
	if !errors.Is(err, context.Canceled) || !ae.ConnBroken || ae.StatusCode != 0 {
		t.Errorf("err = %v, apiErr = %+v", err, ae)
	}
}

// hangingServer answers nothing until the client gives up.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv
}

func TestCallContextDeadlineOverRealHTTP(t *testing.T) {
	srv := hangingServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := newCall(srv.URL).Do(ctx, srv.Client(), fixedNow)
	ae := asAPIError(t, err)
	if !errors.Is(err, context.DeadlineExceeded) || !ae.ConnBroken || ae.StatusCode != 0 {
		t.Errorf("err = %v, apiErr = %+v", err, ae)
	}
}

func TestCallClientTimeoutIsDeadlineExceeded(t *testing.T) {
	srv := hangingServer(t)
	client := srv.Client()
	client.Timeout = 50 * time.Millisecond
	_, err := newCall(srv.URL).Do(context.Background(), client, fixedNow)
	ae := asAPIError(t, err)
	if !errors.Is(err, context.DeadlineExceeded) || !ae.ConnBroken {
		t.Errorf("err = %v, apiErr = %+v", err, ae)
	}
}

func TestCallConnectionResetOverRealHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer srv.Close()
	_, err := newCall(srv.URL).Do(context.Background(), srv.Client(), fixedNow)
	ae := asAPIError(t, err)
	if !ae.ConnBroken || ae.StatusCode != 0 || ae.Err == nil {
		t.Errorf("apiErr = %+v", ae)
	}
}

func TestCallBodyCutShortKeepsHeaderLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Header().Set("x-ratelimit-limit-requests", "60")
		w.Header().Set("x-ratelimit-remaining-requests", "1")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"choices":[`))
	}))
	defer srv.Close()
	_, err := newCall(srv.URL).Do(context.Background(), srv.Client(), fixedNow)
	ae := asAPIError(t, err)
	if !ae.ConnBroken || ae.StatusCode != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, apiErr = %+v", err, ae)
	}
	if ae.Limits.RemainingRequests != 1 || !ae.Limits.HasRequests {
		t.Errorf("limits = %+v", ae.Limits)
	}
}

// endless is an io.Reader of n 'a' bytes that allocates nothing.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	k := min(len(p), e.n)
	for i := range k {
		p[i] = 'a'
	}
	e.n -= k
	return k, nil
}

func TestCallOversizedBodyIsMalformed(t *testing.T) {
	rt := replay.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(&endless{n: provider.MaxResponseBody + 10}),
			ContentLength: -1, Request: r}, nil
	})
	_, err := newCall("http://api.test/v1/x").Do(context.Background(), &http.Client{Transport: rt}, fixedNow)
	ae := asAPIError(t, err)
	if !ae.Malformed || ae.StatusCode != 200 || len(ae.Body) != provider.MaxErrorBody {
		t.Errorf("apiErr: malformed=%v status=%d body=%d", ae.Malformed, ae.StatusCode, len(ae.Body))
	}
}

func TestCallDecodeMalformed(t *testing.T) {
	c := newCall("http://api.test/v1/x")
	res := &provider.HTTPResult{StatusCode: 200, Body: []byte("<html>oops</html>"), Limits: provider.RateLimits{RetryAfter: time.Second}}
	var v struct{}
	err := c.Decode(res, &v)
	ae := asAPIError(t, err)
	if !ae.Malformed || string(ae.Body) != "<html>oops</html>" || ae.RetryAfter != time.Second {
		t.Errorf("apiErr = %+v", ae)
	}
	if !strings.HasPrefix(err.Error(), "prov: m-1: malformed response: decode response:") {
		t.Errorf("Error() = %q", err)
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	for _, tc := range []struct{ in, def, want string }{
		{"https://api.openai.com/v1/", "", "https://api.openai.com/v1"},
		{"", "https://api.anthropic.com", "https://api.anthropic.com"},
		{"http://localhost:11434/v1", "", "http://localhost:11434/v1"},
	} {
		got, err := provider.NormalizeBaseURL(tc.in, tc.def)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"api.openai.com/v1", "ftp://x/y", "https://u:p@host/v1", "https://host/v1?key=abc", "://"} {
		if _, err := provider.NormalizeBaseURL(bad, ""); err == nil {
			t.Errorf("NormalizeBaseURL(%q): want error", bad)
		} else if strings.Contains(err.Error(), "u:p@") || strings.Contains(err.Error(), ":p@") {
			t.Errorf("error leaks credentials: %v", err)
		}
	}
}
