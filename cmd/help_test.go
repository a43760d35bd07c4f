package cmd

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func testFactory(out, errOut *bytes.Buffer) *Factory {
	return &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Getenv: func(string) string { return "" }}
}

// Every command, subcommands included, shows Examples in its --help.
func TestEveryCommandHasExamples(t *testing.T) {
	var out, errOut bytes.Buffer
	root := NewRootCmd(testFactory(&out, &errOut))
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		n++
		out.Reset()
		path := strings.Fields(c.CommandPath())[1:]
		if code := Execute(context.Background(), testFactory(&out, &errOut), append(path, "--help")); code != 0 {
			t.Errorf("%s --help: exit %d", c.CommandPath(), code)
		}
		if !strings.Contains(out.String(), "\nExamples:\n  llmbatch") {
			t.Errorf("%s --help has no Examples:\n%s", c.CommandPath(), out.String())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 12 { // root, run, estimate, select, models, sim, serve, prompts, version, completion and its 4 shells
		t.Errorf("walked %d commands", n)
	}
}

// A missing or extra argument is a usage error (exit 2) that prints the usage line.
func TestMissingArgumentPrintsUsage(t *testing.T) {
	for args, want := range map[string]string{
		"run":            "llmbatch: missing INPUT.jsonl\nusage: llmbatch run INPUT.jsonl [flags]\n",
		"estimate":       "llmbatch: missing INPUT.jsonl\nusage: llmbatch estimate INPUT.jsonl [-c providers.yaml] [--json] [flags]\n",
		"select":         "llmbatch: missing INPUT.jsonl\nusage: llmbatch select INPUT.jsonl [-c providers.yaml] [--json] [--explain] [flags]\n",
		"sim prompts":    "llmbatch: missing N\nusage: llmbatch sim prompts N [flags]\n",
		"run a.jsonl b":  "llmbatch: too many arguments (b)\nusage: llmbatch run INPUT.jsonl [flags]\n",
		"models extra":   "llmbatch: too many arguments (extra)\nusage: llmbatch models [-c providers.yaml] [--json] [flags]\n",
		"version please": "llmbatch: too many arguments (please)\nusage: llmbatch version [flags]\n",
	} {
		var out, errOut bytes.Buffer
		if code := Execute(context.Background(), testFactory(&out, &errOut), strings.Fields(args)); code != ExitUsage {
			t.Errorf("%s: exit %d, want %d", args, code, ExitUsage)
		}
		if errOut.String() != want {
			t.Errorf("%s: stderr %q, want %q", args, errOut.String(), want)
		}
	}
}

// Flag values complete in the shell: the fixed choices, YAML files for -c, JSONL files for INPUT.
func TestFlagValuesComplete(t *testing.T) {
	for args, want := range map[string]string{
		"run --prefer ":       "cost\nspeed\n:4\n",
		"estimate --prefer ":  "cost\nspeed\n:4\n",
		"select --prefer ":    "cost\nspeed\n:4\n",
		"run --format ":       "default\nopenai\n:4\n",
		"run --progress ":     "auto\nalways\nnever\n:4\n",
		"run --log-format ":   "text\njson\n:4\n",
		"run -c ":             "yaml\nyml\n:8\n",
		"estimate --config ":  "yaml\nyml\n:8\n",
		"models -c ":          "yaml\nyml\n:8\n",
		"sim serve --config ": "yaml\nyml\n:8\n",
		"run ":                "jsonl\n:8\n",
		"select --explain ":   "jsonl\n:8\n",
		"run prompts.jsonl ":  ":4\n",
	} {
		var out, errOut bytes.Buffer
		argv := append([]string{"__complete"}, strings.Fields(args)...)
		argv = append(argv, "") // the word being completed
		if code := Execute(context.Background(), testFactory(&out, &errOut), argv); code != 0 {
			t.Errorf("%q: exit %d: %s", args, code, errOut.String())
		}
		if out.String() != want {
			t.Errorf("%q completes to %q, want %q", args, out.String(), want)
		}
	}
}

// -v is the one persistent --verbose flag: accepted by every command, never cobra's -v for --version.
func TestVerboseIsTheSameEverywhere(t *testing.T) {
	var out, errOut bytes.Buffer
	f := testFactory(&out, &errOut)
	root := NewRootCmd(f)
	for _, c := range []string{"run", "estimate", "select", "models", "version"} {
		sub, _, err := root.Find([]string{c})
		if err != nil {
			t.Fatal(err)
		}
		fl := sub.Flag("verbose")
		if fl == nil || fl.Shorthand != "v" || fl.Usage != root.PersistentFlags().Lookup("verbose").Usage {
			t.Errorf("%s: -v is %+v, want the root's persistent --verbose", c, fl)
		}
	}
	if code := Execute(context.Background(), f, []string{"version", "-v"}); code != 0 || !f.Verbose {
		t.Errorf("version -v: exit %d, verbose %v", code, f.Verbose)
	}
	if fl := root.Flags().Lookup("version"); fl != nil && fl.Shorthand == "v" {
		t.Errorf("--version still has the -v shorthand")
	}
}

func TestVersionLine(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/llmbatch/llmbatch",
		Version: "v0.3.1-0.20261129183917-edf704540eed+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "edf704540eeda223009f58634980911f1ecabc82"},
			{Key: "vcs.time", Value: "2026-11-29T18:39:17Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, c := range []struct {
		linked string
		bi     *debug.BuildInfo
		ok     bool
		want   string
	}{
		{"dev", bi, true, "llmbatch v0.3.1-0.20261129183917-edf704540eed+dirty (revision edf704540eeda223009f58634980911f1ecabc82, 2026-11-29T18:39:17Z, modified, go1.26.0)"},
		{"v1.0.0", bi, true, "llmbatch v1.0.0 (revision edf704540eeda223009f58634980911f1ecabc82, 2026-11-29T18:39:17Z, modified, go1.26.0)"},
		{"dev", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, true,
			"llmbatch (devel) (no VCS revision (built outside a git checkout or with -buildvcs=false), go1.26.0)"},
		{"dev", nil, false, "llmbatch dev (no build info)"},
	} {
		if got := versionLine(c.linked, c.bi, c.ok); got != c.want {
			t.Errorf("versionLine(%q) = %q, want %q", c.linked, got, c.want)
		}
	}
	var out, errOut bytes.Buffer
	f := testFactory(&out, &errOut)
	f.BuildInfo = func() (*debug.BuildInfo, bool) { return bi, true }
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out.Reset()
		if code := Execute(context.Background(), f, args); code != 0 || !strings.Contains(out.String(), "revision edf704540eed") {
			t.Errorf("%v: exit %d, printed %q", args, code, out.String())
		}
	}
}
