package cmd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/ratelimit"
	"github.com/llmbatch/llmbatch/pkg/shared"
)

// joinShared connects `run` to the shared Redis when one is named (--shared, config shared.url or
// $LLMBATCH_REDIS_URL): the lanes' limits and, with --max-cost, the job's budget then live there.
// An unreachable server is a usage error (exit 2, nothing sent). The returned func closes the
// connection.
func joinShared(ctx context.Context, o *RunOptions, bo *batch.Options) (func(), error) {
	f := o.Factory
	url, err := shared.Resolve(o.Shared, bo.Config.Shared.URL, f.Getenv)
	if err != nil {
		return nil, usageErr(err)
	}
	if url == "" {
		if o.Job != "" {
			return nil, usageErr(errors.New("--job names the budget shared through Redis: it needs --shared URL (or $" + shared.EnvURL + ")"))
		}
		return func() {}, nil
	}
	job := o.Job
	if job == "" {
		job = filepath.Base(bo.Output)
		if bo.Output == "-" {
			job = filepath.Base(o.Input)
		}
	}
	st, err := shared.Open(ctx, url, shared.Options{Job: job, Logger: bo.Logger, Now: f.Now, Getenv: f.Getenv})
	if err != nil {
		return nil, usageErr(err)
	}
	bo.Logger.Info("sharing limits through Redis", "redis", st.URL(), "job", job, "process", st.ProcessID())
	bo.Limits = sharedLimits{st: st, cfg: bo.Config, getenv: f.Getenv}
	if bo.MaxCost > 0 {
		bo.Budget = sharedBudget{st.Budget(job, bo.MaxCost)}
	}
	return func() { st.Close() }, nil
}

// sharedLimits is the batch.LimitStore of `run --shared`: each lane's limiter lives in Redis, keyed
// by the provider's base URL, the model and the hash of the API key.
type sharedLimits struct {
	st     *shared.Store
	cfg    *config.Config
	getenv func(string) string
}

// Limiter returns the shared limiter of the lane named "provider/model".
func (s sharedLimits) Limiter(name string, l ratelimit.Limits) batch.Limiter {
	prov, model, _ := strings.Cut(name, "/")
	info := shared.LaneInfo{Name: name, Provider: prov, Model: model}
	if p, m := s.cfg.Lookup(prov, model); p != nil {
		info.BaseURL, info.APIKey = p.BaseURL, p.APIKey(s.getenv)
		if info.BaseURL == "" {
			info.BaseURL = p.Type + ":" // the adapter's default endpoint
		}
		if m != nil {
			info.Model = m.Name
		}
	}
	return sharedLimiter{s.st.Lane(info, l)}
}

type sharedLimiter struct{ *shared.Lane }

func (l sharedLimiter) Wait(ctx context.Context, tokens int) (batch.Ticket, error) {
	t, err := l.Lane.Wait(ctx, tokens)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return t, nil
}

// sharedBudget is the batch.SharedBudget of `run --shared --max-cost`.
type sharedBudget struct{ *shared.Budget }

func (b sharedBudget) Reserve(ctx context.Context, est float64) error {
	err := b.Budget.Reserve(ctx, est)
	if errors.Is(err, shared.ErrBudget) {
		return fmt.Errorf("%w: %w", batch.ErrBudgetReached, err)
	}
	return err
}

// The shared limiter also shares the circuit breaker's state.
var _ batch.BreakerSharer = sharedLimiter{}
