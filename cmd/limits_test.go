package cmd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
	"github.com/llmbatch/llmbatch/pkg/shared"
	"github.com/llmbatch/llmbatch/pkg/shared/redistest"
)

func TestLimitsShowsSharedState(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	st, err := shared.Open(ctx, srv.URL(), shared.Options{Job: "nightly"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lane := st.Lane(shared.LaneInfo{Name: "sim/m1", Provider: "sim", BaseURL: "http://127.0.0.1:9/v1", Model: "m1", APIKey: "sk-very-secret"},
		ratelimit.Limits{RPM: 600, TPM: 100000})
	for i := range 3 {
		tk, err := lane.Wait(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 { // the provider says all 500 of the minute are used: 497 by someone else
			tk.RateLimited(provider.RateLimits{HasRequests: true, LimitRequests: 500, RemainingRequests: 0, RetryAfter: 30 * time.Second})
		} else {
			tk.Settle(100)
		}
	}
	b := st.Budget("nightly", 2.5)
	if err := b.Reserve(ctx, 0.25); err != nil {
		t.Fatal(err)
	}
	b.Settle(0.25, 0.0000766)

	io, out, _ := testStreams()
	getenv := func(k string) string {
		if k == shared.EnvURL {
			return srv.URL()
		}
		return ""
	}
	if err := limitsRun(ctx, &LimitsOptions{IO: io, Getenv: getenv, JSON: true}); err != nil {
		t.Fatal(err)
	}
	// The overview as a reader of the JSON sees it (sources are names).
	var ov struct {
		Lanes []struct {
			shared.LaneState
			Source map[string]string `json:"source"`
		} `json:"lanes"`
		Processes []shared.Process   `json:"processes"`
		Jobs      []shared.JobBudget `json:"jobs"`
	}
	if err := json.Unmarshal(out.Bytes(), &ov); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(ov.Lanes) != 1 || len(ov.Processes) != 1 || len(ov.Jobs) != 1 {
		t.Fatalf("lanes %d, processes %d, jobs %d; want 1 each:\n%s", len(ov.Lanes), len(ov.Processes), len(ov.Jobs), out)
	}
	l := ov.Lanes[0]
	if l.Name != "sim/m1" || l.Limits.RPM != 500 || l.Source["RPM"] != "headers" || l.Configured.RPM != 600 ||
		l.Limits.TPM != 100000 || l.WindowRequests != 500 || l.WindowTokens != 300 || l.RateLimited != 1 ||
		l.PausedUntil.IsZero() || l.Processes != 1 || l.DayRequests != 3 {
		t.Errorf("lane = %+v", l)
	}
	if j := ov.Jobs[0]; j.Job != "nightly" || j.CapUSD != 2.5 || j.SpentUSD != 0.0000766 || j.ReservedUSD != 0 {
		t.Errorf("job = %+v", j)
	}
	if strings.Contains(out.String(), "sk-very-secret") {
		t.Error("limits printed the API key")
	}

	io, out, _ = testStreams()
	if err := limitsRun(ctx, &LimitsOptions{IO: io, Getenv: getenv, Shared: srv.URL()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sim/m1", "500 (headers; config 600)", "100000 (config)", "paused", "nightly", "0.0000766", "2.5"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestLimitsErrors(t *testing.T) {
	io, _, _ := testStreams()
	err := limitsRun(context.Background(), &LimitsOptions{IO: io, Getenv: func(string) string { return "" }})
	if exitCode(t, err) != ExitUsage || !strings.Contains(err.Error(), "--shared") {
		t.Errorf("no URL: %v", err)
	}
	srv := redistest.Start(t)
	srv.Kill()
	err = limitsRun(context.Background(), &LimitsOptions{IO: io, Getenv: func(string) string { return "" },
		Shared: "redis://:topsecret@" + srv.Addr() + "/0"})
	if exitCode(t, err) != ExitUsage || strings.Contains(err.Error(), "topsecret") || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("stopped server: %v", err)
	}
}
