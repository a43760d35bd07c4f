package adapters_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/adapters"
	"github.com/llmbatch/llmbatch/pkg/provider/internal/replay"
	"github.com/llmbatch/llmbatch/pkg/request"
)

var t0 = time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func hello(model string) *provider.Request {
	return &provider.Request{Model: model, Messages: []request.Message{{Role: "user", Content: request.Content{Text: "hi"}}}}
}

// recorder answers every request with the body of the matching API and records the URL and headers.
type recorder struct {
	url    atomic.Value
	header atomic.Value
	body   string
	hdr    http.Header
}

func (rc *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rc.url.Store(r.URL.String())
	rc.header.Store(r.Header.Clone())
	h := rc.hdr
	if h == nil {
		h = http.Header{}
	}
	return replay.Response(r, &replay.Recorded{StatusCode: 200, Status: "200 OK", Header: h, Body: []byte(rc.body)}), nil
}

const (
	openaiOK    = `{"model":"m","choices":[{"message":{"content":"ok"},"finish_reason":"stop"}]}`
	anthropicOK = `{"type":"message","model":"m","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn"}`
	geminiOK    = `{"candidates":[{"content":{"parts":[{"text":"ok"}]},"finishReason":"STOP"}]}`
)

func TestNewChoosesAdapterAndEndpoint(t *testing.T) {
	keys := env(map[string]string{"OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-a", "GEMINI_API_KEY": "g-k"})
	tests := []struct {
		name    string
		p       config.Provider
		body    string
		wantURL string
		authHdr string
		authVal string
	}{
		{"openai", config.Provider{Name: "oai", Type: "openai", BaseURL: "https://api.openai.com/v1", APIKeyEnv: "OPENAI_API_KEY"},
			openaiOK, "https://api.openai.com/v1/chat/completions", "Authorization", "Bearer sk-o"},
		{"anthropic", config.Provider{Name: "claude", Type: "anthropic", BaseURL: "https://api.anthropic.com", APIKeyEnv: "ANTHROPIC_API_KEY"},
			anthropicOK, "https://api.anthropic.com/v1/messages", "X-Api-Key", "sk-a"},
		{"gemini", config.Provider{Name: "goog", Type: "gemini", BaseURL: "https://generativelanguage.googleapis.com/v1beta", APIKeyEnv: "GEMINI_API_KEY"},
			geminiOK, "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent", "X-Goog-Api-Key", "g-k"},
		{"keyless ollama", config.Provider{Name: "ollama", Type: "openai", BaseURL: "http://localhost:11434/v1"},
			openaiOK, "http://localhost:11434/v1/chat/completions", "Authorization", ""},
		{"sim default api", config.Provider{Name: "sim", Type: "sim"},
			openaiOK, "http://sim.invalid/v1/chat/completions", "Authorization", ""},
		{"sim anthropic", config.Provider{Name: "sim-a", Type: "sim", Sim: &config.Sim{API: "anthropic"}},
			anthropicOK, "http://sim.invalid/v1/messages", "X-Api-Key", ""},
		{"sim gemini", config.Provider{Name: "sim-g", Type: "sim", Sim: &config.Sim{API: "gemini"}},
			geminiOK, "http://sim.invalid/v1beta/models/m:generateContent", "X-Goog-Api-Key", ""},
		{"sim served over HTTP", config.Provider{Name: "sim-h", Type: "sim", BaseURL: "http://127.0.0.1:8089/v1", Sim: &config.Sim{API: "openai"}},
			openaiOK, "http://127.0.0.1:8089/v1/chat/completions", "Authorization", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &recorder{body: tt.body}
			p := tt.p
			prov, err := adapters.New(&p, adapters.NewHTTPClient(4, rc), keys, adapters.WithNow(func() time.Time { return t0 }))
			if err != nil {
				t.Fatal(err)
			}
			if prov.Name() != p.Name {
				t.Errorf("Name = %q", prov.Name())
			}
			resp, err := prov.Complete(context.Background(), hello("m"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Content != "ok" || resp.FinishReason != "stop" || !resp.Limits.ObservedAt.Equal(t0) {
				t.Errorf("resp = %+v", resp)
			}
			if got := rc.url.Load().(string); got != tt.wantURL {
				t.Errorf("URL = %s, want %s", got, tt.wantURL)
			}
			h := rc.header.Load().(http.Header)
			if got := h.Get(tt.authHdr); got != tt.authVal {
				t.Errorf("%s = %q, want %q", tt.authHdr, got, tt.authVal)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	_, err := adapters.New(&config.Provider{Name: "openai", Type: "openai", BaseURL: "https://api.openai.com/v1", APIKeyEnv: "OPENAI_API_KEY"},
		nil, env(nil))
	if !errors.Is(err, adapters.ErrMissingKey) || !strings.Contains(err.Error(), `"openai"`) || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Errorf("missing key: err = %v", err)
	}
	for name, p := range map[string]*config.Provider{
		"unknown type": {Name: "x", Type: "cohere", BaseURL: "https://api.cohere.ai"},
		"unknown sim":  {Name: "s", Type: "sim", Sim: &config.Sim{API: "bedrock"}},
		"bad base url": {Name: "b", Type: "openai", BaseURL: "api.example.com"},
		"nil provider": nil,
	} {
		_, err := adapters.New(p, nil, env(nil))
		if err == nil {
			t.Errorf("%s: want error", name)
			continue
		}
		if p != nil && !strings.Contains(err.Error(), `"`+p.Name+`"`) {
			t.Errorf("%s: error does not name the provider: %v", name, err)
		}
	}
}

func TestGroqRequestsArePerDay(t *testing.T) {
	rc := &recorder{body: openaiOK, hdr: http.Header{"X-Ratelimit-Limit-Requests": {"14400"}, "X-Ratelimit-Remaining-Requests": {"14400"}}}
	for base, daily := range map[string]bool{"https://api.groq.com/openai/v1": true, "https://api.openai.com/v1": false} {
		prov, err := adapters.New(&config.Provider{Name: "p", Type: "openai", BaseURL: base, APIKeyEnv: "K"}, adapters.NewHTTPClient(1, rc), env(map[string]string{"K": "k"}))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := prov.Complete(context.Background(), hello("m"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Limits.RequestsPerDay != daily || !resp.Limits.HasRequests {
			t.Errorf("%s: limits = %+v", base, resp.Limits)
		}
	}
}

func TestNewHTTPClient(t *testing.T) {
	c := adapters.NewHTTPClient(16, nil)
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", c.Transport)
	}
	if tr.MaxConnsPerHost != 16 || tr.MaxIdleConnsPerHost != 16 || tr.MaxIdleConns < 16 || c.Timeout != 0 || tr == http.DefaultTransport {
		t.Errorf("client: timeout %v, transport %+v", c.Timeout, tr)
	}
	if tr.Proxy == nil || !tr.ForceAttemptHTTP2 {
		t.Errorf("clone of DefaultTransport lost proxy/http2 settings")
	}
	u := adapters.NewHTTPClient(0, nil).Transport.(*http.Transport)
	if u.MaxConnsPerHost != 0 || u.MaxIdleConnsPerHost != 64 {
		t.Errorf("unbounded: %d / %d", u.MaxConnsPerHost, u.MaxIdleConnsPerHost)
	}
	rc := &recorder{}
	if adapters.NewHTTPClient(4, rc).Transport != http.RoundTripper(rc) {
		t.Errorf("given transport not used as is")
	}
}

func TestNoRedirectsSoKeysStayPut(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(true)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v1/messages", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()

	prov, err := adapters.New(&config.Provider{Name: "claude", Type: "anthropic", BaseURL: srv.URL, APIKeyEnv: "K"},
		adapters.NewHTTPClient(2, nil), env(map[string]string{"K": "sk-ant-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = prov.Complete(context.Background(), hello("m"))
	var ae *provider.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v", err)
	}
	if leaked.Load() {
		t.Error("redirect was followed with the key headers")
	}
	if strings.Contains(err.Error(), "sk-ant-secret") {
		t.Error("key in error")
	}
}
