package sim_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// The shipped configs load with the real loader and every simulated model answers in its provider's
// wire format, quickly.
func TestShippedSimConfigs(t *testing.T) {
	for _, path := range []string{"../../testdata/providers.sim.yaml", "../../testdata/sim.yaml"} {
		t.Run(path, func(t *testing.T) {
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Test(t, func(t *testing.T) {
				srv := sim.New(cfg, sim.Options{})
				c := client(srv)
				models := 0
				for _, p := range srv.Providers() {
					for _, m := range p.Models {
						start := time.Now()
						r := mustSend(t, t.Context(), c, p.API, base+"/sim/"+p.Name, m, prompt(models), 200)
						if r.status != 200 && r.status < 500 {
							t.Errorf("%s/%s: %d %s", p.Name, m, r.status, r.body)
						}
						if d := time.Since(start); d > 500*time.Millisecond {
							t.Errorf("%s/%s: latency %v is too long for a demo", p.Name, m, d)
						}
						models++
					}
				}
				if st := srv.Stats(); len(st) != models || models < 5 {
					t.Errorf("%d models, stats %v", models, st)
				}
			})
		})
	}
	cfg, err := config.Load("../../testdata/providers.sim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cats := map[string]bool{}
	apis := map[string]bool{}
	for _, p := range cfg.Providers {
		if p.Type != config.TypeSim {
			t.Errorf("%s: type %s", p.Name, p.Type)
		}
		apis[p.Sim.API] = true
		for _, m := range p.Models {
			cats[m.Category] = true
			if m.RPM < 500 {
				t.Errorf("%s/%s: rpm %d too low for a quick demo", p.Name, m.Name, m.RPM)
			}
		}
	}
	if len(cfg.Providers) != 3 || len(cats) != 4 || !apis["anthropic"] || !apis["openai"] {
		t.Errorf("demo config: %d providers, categories %v, apis %v", len(cfg.Providers), cats, apis)
	}
}
