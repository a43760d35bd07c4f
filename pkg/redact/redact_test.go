package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.openai.com/v1", "https://api.openai.com/v1"},
		{"https://host/v1?key=sk-123", "https://host/v1?key=REDACTED"},
		{"https://host/v1?alt=json&api_key=sk-1&x=2", "https://host/v1?alt=json&api_key=REDACTED&x=2"},
		{"https://host/v1?APIKEY=a&access_token=b&sig=c&Signature=d&password=e&client_secret=f&x-api-key=g",
			"https://host/v1?APIKEY=REDACTED&access_token=REDACTED&sig=REDACTED&Signature=REDACTED&password=REDACTED&client_secret=REDACTED&x-api-key=REDACTED"},
		{"https://user:sk-123@host:8080/v1", "https://REDACTED@host:8080/v1"},
		{"https://sk-123@host/v1?key=k#frag", "https://REDACTED@host/v1?key=REDACTED#frag"},
		{"http://host/path@not-userinfo", "http://host/path@not-userinfo"},
		{"https://host/v1?model=gpt&stream=false", "https://host/v1?model=gpt&stream=false"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := HasSecret(tc.in); got != (tc.in != tc.want) {
			t.Errorf("HasSecret(%q) = %v", tc.in, got)
		}
	}
}

func TestStringMasksURLsInMessages(t *testing.T) {
	const key = "sk-live-0123456789"
	for _, msg := range []string{
		`Post "https://gw.example/v1/chat/completions?key=` + key + `": dial tcp 127.0.0.1:1: connect: connection refused`,
		`openai: base_url https://me:` + key + `@gw.example/v1 unreachable`,
		`several: http://a/?token=` + key + ` and <https://b/x?sig=` + key + `>`,
	} {
		got := String(msg)
		if strings.Contains(got, key) {
			t.Errorf("String(%q) = %q still holds the key", msg, got)
		}
		if !strings.Contains(got, Mask) {
			t.Errorf("String(%q) = %q: nothing masked", msg, got)
		}
	}
	plain := "no urls here: key=value"
	if got := String(plain); got != plain {
		t.Errorf("String(%q) = %q", plain, got)
	}
}

func TestEnvName(t *testing.T) {
	if EnvName("") != "" {
		t.Errorf("EnvName(\"\") = %q, want \"\" (no key needed)", EnvName(""))
	}
	for _, ok := range []string{"OPENAI_API_KEY", "_X", "K2"} {
		if EnvName(ok) != ok || !IsEnvName(ok) {
			t.Errorf("EnvName(%q) = %q, want it printed", ok, EnvName(ok))
		}
	}
	for _, bad := range []string{"sk-proj-abc123", "openai key", "1ABC", "KEY\n"} {
		got := EnvName(bad)
		if IsEnvName(bad) || strings.Contains(got, bad) || !strings.HasPrefix(got, Mask) {
			t.Errorf("EnvName(%q) = %q, want it masked", bad, got)
		}
	}
}
