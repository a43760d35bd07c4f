package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/llmbatch/llmbatch/pkg/batchjournal"
	"github.com/llmbatch/llmbatch/pkg/batchplan"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/selector"
)

// This file holds what select and estimate share about `--via`: each lane's route, decided by
// batchplan.Decide exactly as run decides it, with the turnaround learned from this machine's
// earlier jobs.

// registerVia adds --via to a dry-run command.
func registerVia(fs *pflag.FlagSet, via *string) {
	fs.StringVar(via, "via", batchplan.ViaRealtime, "route as run --via would: realtime | batch (provider batch jobs at the batch discount) | auto (batch where its expected turnaround fits --deadline)")
}

// laneRoutes decides the route of every lane (indexed like lanes) under via and the deadline.
// output is the job's output ("" or "-" when none): its journal's finished jobs count as earlier jobs.
func laneRoutes(cfg *config.Config, lanes []*selector.Lane, via string, deadline time.Duration,
	getenv func(string) string, output string) ([]batchplan.Decision, error) {
	if err := batchplan.CheckVia(via); err != nil {
		return nil, usageErr(err)
	}
	journal := ""
	if output != "" && output != "-" {
		journal = batchjournal.Path(output)
	}
	hist, err := batchplan.Load(batchplan.HistoryPath(getenv), journal)
	if err != nil {
		return nil, usageErr(err)
	}
	out := make([]batchplan.Decision, len(lanes))
	for i, l := range lanes {
		p, _ := cfg.Lookup(l.Provider, l.Name)
		if p == nil {
			out[i] = batchplan.Decide(via, nil, deadline, batchplan.Turnaround{})
			continue
		}
		out[i] = batchplan.Decide(via, p, deadline, hist.Turnaround(p))
	}
	return out, nil
}

// laneBatchWall is the expected wall time of a lane's n prompts charging tokens on the batch route.
func laneBatchWall(cfg *config.Config, l *selector.Lane, d batchplan.Decision, n, tokens int64) time.Duration {
	p, _ := cfg.Lookup(l.Provider, l.Name)
	return batchplan.Wall(p, l.Name, n, tokens, batchplan.LaneJobs, d.Turnaround.Expected)
}

// turnaroundNote is a decision's turnaround for people: "1m0s (config)".
func turnaroundNote(d batchplan.Decision) string {
	if d.Route != batchplan.Batch {
		return "-"
	}
	return fmt.Sprintf("%s (%s)", d.Turnaround.Expected, d.Turnaround.Source())
}

// wallSeconds formats a wall time given in seconds (as the JSON carries it) like wall.
func wallSeconds(s float64) string { return wall(time.Duration(s * float64(time.Second))) }
