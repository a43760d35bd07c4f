package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/batchapi"
	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/provider/adapters"
	"github.com/llmbatch/llmbatch/pkg/results"
)

// NewCmdCancel builds `llmbatch cancel OUT.jsonl`: it cancels the live provider batch jobs recorded
// in OUT.jsonl.batches (each cancel recorded before it is sent). Rerunning the same `run` command
// then downloads what the cancelled jobs did answer and sends the rest again.
func NewCmdCancel(f *Factory) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "cancel OUT.jsonl",
		Short: "Cancel the live provider batch jobs of a run (recorded in OUT.jsonl.batches)",
		Example: `  llmbatch cancel prompts.results.jsonl
  llmbatch cancel out.jsonl -c providers.yaml && llmbatch run prompts.jsonl -o out.jsonl --via batch`,
		Args: cobra.ExactArgs(1),
	}
	loadConfig := configFlag(f, c)
	c.RunE = dryRunE(f, &output, func(ctx context.Context) error {
		target, err := results.Resolve(output) // run keeps the journal next to a symlinked output's target
		if err != nil {
			return usageErr(err)
		}
		path := batchjournal.Path(target)
		if _, err := os.Stat(path); err != nil {
			return usageErr(fmt.Errorf("%s: no batch journal (was the run started with --via batch or auto?): %w", path, err))
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		j, st, err := batchjournal.Open(path, f.Now)
		if err != nil {
			return usageErr(err)
		}
		defer j.Close()
		clients := map[string]batchapi.Client{}
		cancelled := 0
		var errs []error
		for _, ch := range st.Live() {
			cl := clients[ch.Provider]
			if cl == nil {
				p := providerNamed(cfg, ch.Provider)
				if p == nil {
					errs = append(errs, fmt.Errorf("chunk %s: provider %q is not in %s", ch.ID, ch.Provider, cfg.Path))
					continue
				}
				var rt http.RoundTripper
				if f.Transport != nil {
					rt = f.Transport(p)
				}
				if cl, err = batchapi.New(p, batchapi.Options{Client: adapters.NewHTTPClient(4, rt), Getenv: f.Getenv, Now: f.Now}); err != nil {
					errs = append(errs, err)
					continue
				}
				clients[ch.Provider] = cl
			}
			job, err := batchjournal.Recover(ctx, j, cl, ch)
			if err != nil {
				errs = append(errs, fmt.Errorf("chunk %s: %w", ch.ID, err))
				continue
			}
			if job == nil || job.Status.Ended() {
				continue // nothing live to cancel; the next run downloads or resends it
			}
			if err := j.Append(batchjournal.Record{Op: batchjournal.OpCancel, Chunk: ch.ID}); err != nil {
				return err
			}
			id := job.ID
			if job, err = cl.Cancel(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("chunk %s: cancel %s: %w", ch.ID, id, err))
				continue
			}
			cancelled++
			fmt.Fprintf(f.IO.Out, "%s/%s chunk %s: batch %s %s (%d of %d lines done)\n", ch.Provider, ch.Model, ch.ID, job.ID, job.Status, job.Done, job.Total)
		}
		fmt.Fprintf(f.IO.ErrOut, "%d batch jobs cancelled; run the same `llmbatch run` command again to collect what they answered\n", cancelled)
		return errors.Join(errs...)
	})
	return c
}

func providerNamed(cfg *config.Config, name string) *config.Provider {
	for _, p := range cfg.Providers {
		if p.Name == name {
			return p
		}
	}
	return nil
}
