// Package cmd holds llmbatch's cobra commands. Each command is an Options struct, a NewCmdX
// constructor that fills it from flags, and an xRun function that does the work, so tests can run
// commands with fake I/O.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/llmbatch/llmbatch/pkg/batch"
	"github.com/llmbatch/llmbatch/pkg/config"
	"github.com/llmbatch/llmbatch/pkg/redact"
)

// Exit codes (DESIGN §1).
const (
	ExitOK          = 0
	ExitPartial     = 1 // the run finished but some prompts ended in error
	ExitUsage       = 2 // usage, config or input error; nothing was sent
	ExitBudget      = 3 // stopped by --max-cost
	ExitInterrupted = 130
)

// Version is set at build time with -ldflags "-X github.com/llmbatch/llmbatch/cmd.Version=...".
var Version = "dev"

// ExitError carries an exit code out of a command.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// prepared maps the error of batch.Prepare to an exit code: its problems are usage errors (exit 2).
func prepared(err error) error {
	var ue *batch.UsageError
	if errors.As(err, &ue) {
		return usageErr(ue.Err)
	}
	return err
}

// usageErr marks err as a usage, config or input error (exit 2).
func usageErr(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// IOStreams are the process's standard streams, injectable for tests.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrIsTerminal reports whether ErrOut is a terminal (progress bars only draw on one).
	ErrIsTerminal bool
	// ErrWidth is ErrOut's width in columns when it is a terminal; 0 means unknown (80 is assumed).
	ErrWidth int
}

// termWidth is the width the progress bar and the summary fit: ErrWidth, else 80.
func termWidth(io *IOStreams) int {
	if io.ErrWidth > 0 {
		return io.ErrWidth
	}
	return 80
}

// Factory provides what commands need from the environment; tests replace its fields.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string
	Now    func() time.Time
	// Signals, when set, delivers the process's interrupt signals (SIGINT/SIGTERM/SIGHUP) to run, estimate,
	// select and sim serve; without it they are not watched.
	Signals <-chan os.Signal
	// Transport, when set, returns the HTTP transport for a provider instead of the network's (tests
	// point every provider at an in-process simulator); nil from it means the default.
	Transport func(p *config.Provider) http.RoundTripper
	// BuildInfo reads the binary's build info for `version`; debug.ReadBuildInfo when nil.
	BuildInfo func() (*debug.BuildInfo, bool)
	// Verbose is the persistent -v/--verbose flag, set once the command line is parsed.
	Verbose bool
	// OpenOutput, when set, opens run's output file for appending instead of results.OpenAppend
	// (tests inject a disk that fills up). It is called after a resume scan or --fresh has prepared
	// the file; each result line reaches the writer in one Write call. At the end run calls its
	// Sync method, if it has one, and Close.
	OpenOutput func(path string) (io.WriteCloser, error)
}

// LoadConfig loads the providers file named by -c, else $LLMBATCH_CONFIG, else ./providers.yaml.
func (f *Factory) LoadConfig(path string) (*config.Config, error) {
	if path == "" {
		path = f.Getenv("LLMBATCH_CONFIG")
	}
	if path == "" {
		path = "providers.yaml"
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, usageErr(err)
	}
	return cfg, nil
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	buildInfo := f.BuildInfo
	if buildInfo == nil {
		buildInfo = debug.ReadBuildInfo
	}
	bi, biOK := buildInfo()
	version := versionLine(Version, bi, biOK)
	root := &cobra.Command{
		Use:   "llmbatch",
		Short: "Run large batches of LLM prompts across providers, within their rate limits, at the lowest cost",
		Example: `  llmbatch models -c providers.yaml
  llmbatch estimate prompts.jsonl -c providers.yaml
  llmbatch run prompts.jsonl -c providers.yaml -o results.jsonl`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	globalFlags(root, f)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetIn(f.IO.In)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(NewCmdRun(f, nil), NewCmdEstimate(f), NewCmdSelect(f), NewCmdModels(f), NewCmdSim(f), NewCmdCancel(f), NewCmdLimits(f), NewCmdReport(f), NewCmdCache(f))
	root.AddCommand(&cobra.Command{
		Use:     "version",
		Short:   "Print the version and the VCS revision it was built from",
		Example: "  llmbatch version",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(f.IO.Out, version)
			return err
		},
	})
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = "  llmbatch completion bash > ~/.local/share/bash-completion/completions/llmbatch\n" +
				"  llmbatch completion zsh > \"${fpath[1]}/_llmbatch\""
			examples := map[string]string{
				"bash":       "  llmbatch completion bash > ~/.local/share/bash-completion/completions/llmbatch",
				"zsh":        "  llmbatch completion zsh > \"${fpath[1]}/_llmbatch\"",
				"fish":       "  llmbatch completion fish > ~/.config/fish/completions/llmbatch.fish",
				"powershell": "  llmbatch completion powershell | Out-String | Invoke-Expression",
			}
			for _, sub := range c.Commands() {
				sub.Example = examples[sub.Name()]
			}
		}
	}
	return root
}

// globalFlags adds the flags every command shares to root. -v is one persistent flag with one
// meaning for every command (and so not cobra's -v for --version, which stays --version).
func globalFlags(root *cobra.Command, f *Factory) {
	root.PersistentFlags().BoolVarP(&f.Verbose, "verbose", "v", false,
		"debug logs on stderr (run also keeps each prompt's attempt log in its result line)")
}

// Main runs llmbatch with the process's arguments and environment and returns the exit code.
func Main() int {
	sigs := make(chan os.Signal, 2)
	// SIGHUP (the terminal closed) stops as gracefully as Ctrl-C: results in flight are kept and the
	// resume command printed, rather than the process dying with them.
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	errFd := int(os.Stderr.Fd())
	width := 0
	if term.IsTerminal(errFd) {
		if w, _, err := term.GetSize(errFd); err == nil {
			width = w
		}
	}
	f := &Factory{
		IO: &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
			ErrIsTerminal: term.IsTerminal(errFd), ErrWidth: width},
		Getenv:  os.Getenv,
		Now:     time.Now,
		Signals: sigs,
	}
	return Execute(context.Background(), f, os.Args[1:])
}

// configFlag adds -c/--config to c and returns the loader of the providers file it names (LoadConfig's
// order of defaults applies).
func configFlag(f *Factory, c *cobra.Command) func() (*config.Config, error) {
	path := c.Flags().StringP("config", "c", "", "providers file (default ./providers.yaml, else $LLMBATCH_CONFIG)")
	return func() (*config.Config, error) { return f.LoadConfig(*path) }
}

// dryRunE is the RunE of a command that sends nothing (estimate, select): it stores the one argument
// in *input and runs with a context that Ctrl-C cancels at once.
func dryRunE(f *Factory, input *string, run func(context.Context) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		*input = args[0]
		ctx, stop := untilSignal(c.Context(), f.Signals)
		defer stop()
		return run(ctx)
	}
}

// untilSignal returns ctx cancelled by the first value on sigs (nil: never) for commands that stop
// at once on Ctrl-C, and a function that stops watching and reports whether a signal came. It is for
// estimate, select and run's checks before anything is sent; run then watches the signals itself.
func untilSignal(ctx context.Context, sigs <-chan os.Signal) (context.Context, func() bool) {
	ctx, cancel := context.WithCancelCause(ctx)
	interrupt := func(s os.Signal) { cancel(fmt.Errorf("%w by %s", errInterrupted, s)) }
	select { // one already pending stops the command before it starts
	case s := <-sigs:
		interrupt(s)
	default:
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case s := <-sigs:
			interrupt(s)
		case <-done:
		}
	})
	return ctx, func() bool {
		close(done)
		wg.Wait()
		select { // a signal that came before the stop counts, even if the watcher had not taken it yet
		case s := <-sigs:
			interrupt(s)
		default:
		}
		got := errors.Is(context.Cause(ctx), errInterrupted)
		cancel(nil)
		return got
	}
}

// errInterrupted is the cause of a context cancelled by a signal.
var errInterrupted = errors.New("interrupted")

// Execute runs the command line args and maps the outcome to an exit code, printing any error to ErrOut.
func Execute(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitUsage // cobra's own errors (unknown command, bad args) are usage errors
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	} else if errors.Is(err, context.Canceled) {
		code = ExitInterrupted
		err = errors.New("interrupted")
	}
	if ee == nil || ee.Err != nil {
		fmt.Fprintf(f.IO.ErrOut, "llmbatch: %s\n", redact.String(err.Error())) // a URL in an error may carry a key
	}
	return code
}
