package shared

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		flag, cfg, env, want, err string
	}{
		{want: ""},
		{cfg: "redis://cfg:6379/0", want: "redis://cfg:6379/0"},
		{cfg: "redis://cfg:6379/0", env: "redis://env:6379/1", want: "redis://cfg:6379/0"},
		{env: "redis://:pw@env:6379/1", want: "redis://:pw@env:6379/1"},
		{flag: "redis://flag/2", cfg: "redis://cfg/0", env: "redis://env/1", want: "redis://flag/2"},
		{cfg: "redis://:pw123@cfg:6379/0", err: "holds a password"},
		{cfg: "redis://user@cfg:6379/0", want: "redis://user@cfg:6379/0"},
	}
	for _, c := range cases {
		env[EnvURL] = c.env
		got, err := Resolve(c.flag, c.cfg, getenv)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "pw123") {
				t.Errorf("Resolve(%q,%q,%q) error %v, want %q without the password", c.flag, c.cfg, c.env, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Resolve(%q,%q,%q) = %q, %v; want %q", c.flag, c.cfg, c.env, got, err, c.want)
		}
	}
}

func TestParseURL(t *testing.T) {
	env := map[string]string{EnvPassword: "fromenv"}
	o, err := parseURL("rediss://h.example:6380/3", func(k string) string { return env[k] })
	if err != nil || o.TLSConfig == nil || o.DB != 3 || o.Password != "fromenv" || o.Addr != "h.example:6380" {
		t.Fatalf("rediss URL: %+v %v", o, err)
	}
	o, err = parseURL("redis://:inurl@h:6379/0", func(k string) string { return env[k] })
	if err != nil || o.Password != "inurl" {
		t.Fatalf("password in the URL wins: %+v %v", o, err)
	}
	for _, bad := range []string{"http://:s3cr3t@h/0", "redis://:s3cr3t@h/notadb", "::::"} {
		_, err := parseURL(bad, nil)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("parseURL(%q) = %v: want an error without the password", bad, err)
		}
	}
	if got := Redact("redis://u:s3cr3t@h:1/0"); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "u:xxxxx@h:1") {
		t.Errorf("Redact = %q", got)
	}
}

func TestLaneIdentity(t *testing.T) {
	base := LaneInfo{BaseURL: "https://API.openai.com/v1/", Model: "gpt-4o-mini", APIKey: "sk-1"}
	same := LaneInfo{BaseURL: "https://api.openai.com/v1", Model: "gpt-4o-mini", APIKey: "sk-1", Provider: "other-name"}
	if base.ID() != same.ID() {
		t.Error("the same base URL (case, trailing slash), model and key must share a lane")
	}
	for _, d := range []LaneInfo{
		{BaseURL: base.BaseURL, Model: base.Model, APIKey: "sk-2"},
		{BaseURL: base.BaseURL, Model: "gpt-4o", APIKey: "sk-1"},
		{BaseURL: "https://api.groq.com/openai/v1", Model: base.Model, APIKey: "sk-1"},
	} {
		if d.ID() == base.ID() {
			t.Errorf("%+v shares the lane of %+v", d, base)
		}
	}
	if fp := base.KeyFingerprint(); len(fp) != 8 || strings.Contains(fp, "sk-1") {
		t.Errorf("fingerprint %q", fp)
	}
}
