// Package testkit holds the small helpers the tests of several packages share: a log buffer safe
// under the race detector, a terminal emulator to read a drawn screen back, and a directory listing.
// Only tests import it.
package testkit

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// SyncBuffer is a bytes.Buffer that a logger or display may write to while the test reads it.
// The zero value is an empty buffer ready to use; it must not be copied after first use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer; it never fails.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eraseLine is the ANSI sequence that clears the cursor's line.
const eraseLine = "\x1b[2K"

// Screen plays out as a terminal would and returns the screen's lines: "\r" returns to the start
// of the line, "\n" starts a new one, "\x1b[2K" erases the line, other runes overwrite what is
// under the cursor. Trailing blanks of every line are dropped; a final "\n" leaves an empty last line.
func Screen(out string) []string {
	lines := [][]rune{{}}
	row, col := 0, 0
	for i := 0; i < len(out); {
		if strings.HasPrefix(out[i:], eraseLine) {
			lines[row] = lines[row][:0]
			i += len(eraseLine)
			continue
		}
		r, size := utf8.DecodeRuneInString(out[i:])
		i += size
		switch r {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
			if row == len(lines) {
				lines = append(lines, []rune{})
			}
		default:
			for len(lines[row]) <= col {
				lines[row] = append(lines[row], ' ')
			}
			lines[row][col] = r
			col++
		}
	}
	screen := make([]string, len(lines))
	for i, l := range lines {
		screen[i] = strings.TrimRight(string(l), " ")
	}
	return screen
}

// DirNames lists the names in dir, sorted as os.ReadDir sorts them; it fails the test when dir
// cannot be read.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
