package config

import (
	"strings"
	"testing"
	"time"
)

func TestBatchDefaultsPerDialect(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(`providers:
  - name: oa
    type: openai
    base_url: http://x/v1
    batch: true
    models: [{name: m}]
  - name: an
    type: anthropic
    base_url: http://x
    batch: {enabled: true, discount: 0.4, max_bytes: 10MiB, turnaround: 1h, poll: 5s, enqueued_tokens: {m: 5000}}
    models: [{name: m}]
  - name: s
    type: sim
    sim: {api: gemini, batch: {turnaround: 10m, errored: 0.1, expired: 0.05, enqueued_tokens: 100}}
    batch: {enabled: false}
    models: [{name: m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	oa, an, s := cfg.Providers[0].Batch, cfg.Providers[1].Batch, cfg.Providers[2].Batch
	if !oa.Enabled || oa.MaxRequests != 50_000 || oa.MaxBytes != 200<<20 || oa.DiscountOrDefault() != 0.5 ||
		oa.Turnaround.D() != 24*time.Hour || oa.Poll.D() != 30*time.Second {
		t.Errorf("openai defaults: %+v", oa)
	}
	if !an.Enabled || an.MaxRequests != 100_000 || an.MaxBytes != 10<<20 || an.DiscountOrDefault() != 0.4 ||
		an.Turnaround.D() != time.Hour || an.Poll.D() != 5*time.Second || an.EnqueuedTokens["m"] != 5000 {
		t.Errorf("anthropic: %+v", an)
	}
	if s.Enabled || s.MaxBytes != 20<<20 {
		t.Errorf("sim gemini: %+v", s)
	}
	sb := cfg.Providers[2].Sim.Batch
	if sb.Turnaround.D() != 10*time.Minute || sb.Errored != 0.1 || sb.Expired != 0.05 || sb.EnqueuedTokens != 100 {
		t.Errorf("sim batch: %+v", sb)
	}
}

func TestBatchErrorsNameLineAndField(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"discount", "providers:\n  - name: a\n    type: sim\n    batch: {enabled: true, discount: 1.5}\n    models: [{name: m}]\n",
			"p.yaml:4:38: discount is the fraction of the price saved"},
		{"size", "providers:\n  - name: a\n    type: sim\n    batch: {max_bytes: lots}\n    models: [{name: m}]\n",
			`p.yaml:4:24: bad size "lots"`},
		{"unknown field", "providers:\n  - name: a\n    type: sim\n    batch: {enabled: true, polll: 1s}\n    models: [{name: m}]\n",
			`unknown field "polll"`},
		{"enqueued model", "providers:\n  - name: a\n    type: sim\n    batch: {enqueued_tokens: {zz: 5}}\n    models: [{name: m}]\n",
			`p.yaml:4:30: enqueued_tokens names model "zz"`},
		{"sim fractions", "providers:\n  - name: a\n    type: sim\n    sim: {batch: {errored: 0.8, expired: 0.5}}\n    models: [{name: m}]\n",
			"errored (0.8) and expired (0.5) add up to more than 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
