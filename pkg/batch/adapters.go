package batch

import (
	"fmt"
	"net/http"
	"time"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider"
	"github.com/llmbatch/llmbatch/pkg/provider/adapters"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// buildAdapters creates one adapter per usable provider. Providers whose key variable is unset are
// skipped (Prepare warned about them); `type: sim` providers get an in-process simulator unless
// transport returns a transport for them. concurrency is the run's in-flight bound.
func buildAdapters(cfg *config.Config, getenv func(string) string, concurrency int,
	transport func(*config.Provider) http.RoundTripper, now func() time.Time) (map[string]provider.Provider, error) {
	apis := map[string]provider.Provider{}
	budget := provider.NewBudget(0) // one bound on buffered response bodies across every provider
	for _, p := range cfg.Providers {
		if !p.Available(getenv) {
			continue
		}
		var rt http.RoundTripper
		if transport != nil {
			rt = transport(p)
		}
		if rt == nil && p.Type == config.TypeSim {
			rt = sim.NewProvider(p, sim.Options{Now: now}).Transport()
		}
		maxConns := concurrency
		if p.MaxConcurrency > 0 {
			maxConns = min(concurrency, p.MaxConcurrency)
		}
		api, err := adapters.New(p, adapters.NewHTTPClient(maxConns, rt), getenv, adapters.WithNow(now),
			adapters.WithBudget(budget))
		if err != nil {
			return nil, usageErr(fmt.Errorf("%s: %w", cfg.Path, err))
		}
		apis[p.Name] = api
	}
	if len(apis) == 0 {
		return nil, usageErr(fmt.Errorf("%s: no provider can be used: set the API key variable of at least one provider (see `llmbatch models`)", cfg.Path))
	}
	return apis, nil
}
