package cmd

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// This file holds what makes every command behave the same at the command line: the argument
// check that prints the usage line, shell completion of flag values and the version line.

// exactArgs is cobra.ExactArgs(n) with an error that names what is missing and prints the usage
// line, so `llmbatch run` alone says "missing INPUT.jsonl" and how to call it (exit 2).
func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			missing := "argument"
			if len(args) < len(names) {
				missing = strings.Join(names[len(args):n], " ")
			}
			return usageErr(fmt.Errorf("missing %s\nusage: %s", missing, c.UseLine()))
		case len(args) > n:
			return usageErr(fmt.Errorf("too many arguments (%s)\nusage: %s", strings.Join(args[n:], " "), c.UseLine()))
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with the usage line in its error.
func noArgs(c *cobra.Command, args []string) error { return exactArgs(0)(c, args) }

// completeValues makes flag name complete to the given values (and never to file names).
func completeValues(c *cobra.Command, name string, values ...string) {
	// The flag is registered by the caller just before; an error means a typo in name.
	if err := c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)); err != nil {
		panic(err)
	}
}

// completeConfig makes -c/--config complete to YAML files.
func completeConfig(c *cobra.Command) {
	if err := c.MarkFlagFilename("config", "yaml", "yml"); err != nil {
		panic(err)
	}
}

// completeJSONL makes the command's positional argument complete to JSONL files.
func completeJSONL(c *cobra.Command) {
	c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return []string{"jsonl"}, cobra.ShellCompDirectiveFilterFileExt
	}
}

// versionLine is what `llmbatch version` prints: the version (set at link time, else the module
// version the Go toolchain stamped from the VCS), then the VCS revision, its time and whether the
// tree had uncommitted changes, from the build info.
func versionLine(linked string, bi *debug.BuildInfo, ok bool) string {
	version := linked
	if (version == "" || version == "dev") && ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	if version == "" {
		version = "dev"
	}
	line := "llmbatch " + version
	if !ok {
		return line + " (no build info)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var parts []string
	if rev != "" {
		parts = append(parts, "revision "+rev)
	} else {
		parts = append(parts, "no VCS revision (built outside a git checkout or with -buildvcs=false)")
	}
	if at != "" {
		parts = append(parts, at)
	}
	if modified {
		parts = append(parts, "modified")
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return line + " (" + strings.Join(parts, ", ") + ")"
}
