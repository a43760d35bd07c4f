package cmd

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points XDG_CACHE_HOME at a temporary directory for the whole test binary, so that the
// llmbatch processes tests start (which inherit the environment) never touch the user's
// ~/.cache/llmbatch response cache. In-process runs read the Factory's Getenv instead.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "llmbatch-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
