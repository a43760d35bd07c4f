package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/sim"
)

// SimServeOptions are the inputs of `llmbatch sim serve`.
type SimServeOptions struct {
	IO *IOStreams
	// Config loads the configuration whose `type: sim` providers are served.
	Config func() (*config.Config, error)
	// Addr is the TCP address to listen on; port 0 picks a free port.
	Addr string
	// Signals, when set, stops the server gracefully on any value (SIGINT/SIGTERM from Main).
	Signals <-chan os.Signal
	// Now is the simulator's clock; nil means time.Now.
	Now func() time.Time
	// Ready, when set, is called with the bound address ("127.0.0.1:41234") once the server listens.
	Ready func(addr string)
	// ShutdownGrace bounds how long a graceful stop waits for requests in flight (default 3s); hanging
	// requests are then cut off.
	ShutdownGrace time.Duration
}

// NewCmdSim builds the `sim` command group; its one subcommand is `serve`.
func NewCmdSim(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "sim",
		Short: "The built-in provider simulator",
		Long: "The provider simulator speaks the OpenAI, Anthropic and Gemini chat APIs with strict rate limits,\n" +
			"latency and injected faults, for the `type: sim` providers of a config file.",
		Example: `  llmbatch sim serve --config testdata/sim.yaml
  llmbatch sim prompts 1000 > prompts.jsonl`,
		Args: noArgs,
	}
	c.AddCommand(NewCmdSimServe(f, nil), NewCmdSimPrompts(f))
	return c
}

// NewCmdSimServe builds `sim serve`. runF, when not nil, replaces simServeRun (tests capture the options).
func NewCmdSimServe(f *Factory, runF func(context.Context, *SimServeOptions) error) *cobra.Command {
	opts := &SimServeOptions{IO: f.IO, Signals: f.Signals, Now: f.Now}
	var configPath string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the config's simulated providers over HTTP",
		Long: "Serve every model of every `type: sim` provider of the config over HTTP, on the real API paths:\n" +
			"  POST /v1/chat/completions, POST /v1/messages, POST /v1beta/models/{model}:generateContent,\n" +
			"  GET /v1/models. Prefix a path with /sim/{provider} (or send x-sim-provider) when model names repeat.\n" +
			"Stops on SIGINT/SIGTERM.",
		Example: "  llmbatch sim serve --addr 127.0.0.1:8089 --config testdata/sim.yaml",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts.Config = func() (*config.Config, error) { return f.LoadConfig(configPath) }
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return simServeRun(c.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.Addr, "addr", "127.0.0.1:8089", "address to listen on (port 0 picks a free one)")
	c.Flags().StringVarP(&configPath, "config", "c", "", "config file (default ./providers.yaml, else $LLMBATCH_CONFIG)")
	completeConfig(c)
	return c
}

// simServeRun serves the simulator until ctx ends or a signal arrives, then stops gracefully.
func simServeRun(ctx context.Context, opts *SimServeOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	srv := sim.New(cfg, sim.Options{Now: opts.Now})
	providers := srv.Providers()
	if len(providers) == 0 {
		return usageErr(fmt.Errorf("sim serve: %s has no `type: sim` provider to serve", cfg.Path))
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return usageErr(fmt.Errorf("sim serve: %w", err))
	}
	addr := ln.Addr().String()

	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	printSimBanner(opts.IO, addr, providers)
	if opts.Ready != nil {
		opts.Ready(addr)
	}

	select {
	case err := <-served:
		return fmt.Errorf("sim serve: %w", err)
	case <-ctx.Done():
	case <-opts.Signals:
	}
	fmt.Fprintln(opts.IO.ErrOut, "sim: stopping")
	grace := opts.ShutdownGrace
	if grace <= 0 {
		grace = 3 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = hs.Shutdown(sctx)
	cancelBase() // ends hangs and latency waits still running
	if err != nil {
		_ = hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sim serve: %w", err)
	}
	return nil
}

func printSimBanner(streams *IOStreams, addr string, providers []sim.ProviderInfo) {
	root := "http://" + addr
	w := streams.ErrOut
	fmt.Fprintf(w, "sim: listening on %s\n", root)
	fmt.Fprintf(w, "  base_url  openai: %s  anthropic: %s  gemini: %s\n",
		sim.BaseURL(root, config.TypeOpenAI), sim.BaseURL(root, config.TypeAnthropic), sim.BaseURL(root, config.TypeGemini))
	for _, p := range providers {
		fmt.Fprintf(w, "  %s (api %s): base_url %s  models: %s\n",
			p.Name, p.API, sim.BaseURL(root+"/sim/"+p.Name, p.API), strings.Join(p.Models, ", "))
	}
	fmt.Fprintln(w, "  stop with Ctrl-C")
}
