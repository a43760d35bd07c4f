package cmd

import (
	"fmt"
	"os"
	"testing"
)

// TestMain turns the response cache off (LLMBATCH_CACHE=off) for the llmbatch processes tests start,
// which inherit the environment, and points XDG_CACHE_HOME at a temporary directory: they never
// touch the user's ~/.cache, and one test's answers never answer another's prompts. Tests of the
// cache turn it on explicitly. In-process runs read the Factory's Getenv instead.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "llmbatch-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	os.Setenv("LLMBATCH_CACHE", "off")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
