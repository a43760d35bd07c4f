package testkit

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

func TestScreenPlaysCarriageReturnsAndErases(t *testing.T) {
	for _, c := range []struct {
		out  string
		want []string
	}{
		{"", []string{""}},
		{"bar 10%\rbar 20%", []string{"bar 20%"}},
		{"long bar\r\x1b[2Klog\n", []string{"log", ""}},
		{"abcdef\rxy", []string{"xycdef"}},
		{"█ 1/2\r\x1b[2K", []string{""}},
		{"a  \nb", []string{"a", "b"}},
	} {
		if got := Screen(c.out); !slices.Equal(got, c.want) {
			t.Errorf("Screen(%q) = %q, want %q", c.out, got, c.want)
		}
	}
}

func TestSyncBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Errorf("%d bytes, want 800", n)
	}
}

func TestDirNamesListsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b", "a"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := DirNames(t, dir); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("DirNames = %q, want [a b]", got)
	}
}
