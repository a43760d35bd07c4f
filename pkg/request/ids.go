package request

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// DefaultMemoryIDs is how many id hashes validation keeps in memory (32 MiB) before it spills a
// sorted run of them to a temporary file.
const DefaultMemoryIDs = 4 << 20

// idHashes finds the 64-bit id hashes that occur more than once with memory bounded by limit hashes:
// an external sort. While the buffer fits it is only sorted at the end; when it fills it is sorted and
// written to a temporary file as a run, and duplicates merges the runs. (A Go map of 10 million ids
// takes about 600 MB and a single growing slice 8 bytes per id plus its growth copies.)
type idHashes struct {
	limit int    // hashes kept in memory
	dir   string // for the spill file; "" = os.TempDir()
	buf   []uint64
	file  *os.File // spilled runs, back to back; nil until the first spill
	runs  []int64  // end offset of each spilled run in file
}

// add remembers one hash. An error means a run could not be spilled.
func (s *idHashes) add(h uint64) error {
	if s.buf == nil {
		s.buf = make([]uint64, 0, min(s.limit, 64<<10))
	}
	if len(s.buf) == s.limit {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, h)
	return nil
}

// spill sorts the buffer and appends it to the spill file as one run.
func (s *idHashes) spill() error {
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "llmbatch-ids-*")
		if err != nil {
			return fmt.Errorf("checking ids for duplicates needs a temporary file (8 bytes per request; set TMPDIR to a writable directory): %w", err)
		}
		s.file = f
		// Unlinked at once where the OS allows it (the open file stays usable), so a killed run
		// leaves nothing behind; close removes it otherwise.
		_ = os.Remove(f.Name())
	}
	slices.Sort(s.buf)
	w := bufio.NewWriterSize(s.file, 64<<10)
	var b [8]byte
	for _, h := range s.buf {
		binary.LittleEndian.PutUint64(b[:], h)
		w.Write(b[:]) // a write error is sticky and returned by Flush
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("spill id hashes to %s: %w", s.file.Name(), err)
	}
	end := int64(0)
	if n := len(s.runs); n > 0 {
		end = s.runs[n-1]
	}
	s.runs = append(s.runs, end+8*int64(len(s.buf)))
	s.buf = s.buf[:0]
	return nil
}

// duplicates returns, sorted, the first maxGroups hashes (in hash order) that occur more than once,
// and the number of lines that repeat an earlier id, over every hash, returned or not.
func (s *idHashes) duplicates(maxGroups int) (groups []uint64, repeats int, err error) {
	slices.Sort(s.buf)
	cursors := &runHeap{}
	if len(s.buf) > 0 {
		cursors.items = append(cursors.items, &runCursor{mem: s.buf})
	}
	start := int64(0)
	for _, end := range s.runs {
		cursors.items = append(cursors.items, &runCursor{disk: bufio.NewReaderSize(io.NewSectionReader(s.file, start, end-start), 64<<10)})
		start = end
	}
	for _, c := range cursors.items { // every run holds at least one hash
		if err := c.advance(); err != nil {
			return nil, 0, err
		}
	}
	heap.Init(cursors)
	var prev uint64
	first := true
	for cursors.Len() > 0 {
		c := cursors.items[0]
		h := c.head
		if !first && h == prev {
			repeats++
			if (len(groups) == 0 || groups[len(groups)-1] != h) && len(groups) < maxGroups {
				groups = append(groups, h)
			}
		}
		prev, first = h, false
		switch err := c.advance(); {
		case err == io.EOF:
			heap.Pop(cursors)
		case err != nil:
			return nil, 0, err
		default:
			heap.Fix(cursors, 0)
		}
	}
	return groups, repeats, nil
}

// close drops the buffer and removes the spill file.
func (s *idHashes) close() {
	s.buf = nil
	if s.file != nil {
		s.file.Close()
		_ = os.Remove(s.file.Name()) // already gone where the OS let spill unlink it
		s.file = nil
	}
}

// runCursor walks one sorted run, in memory or on disk; head is its current hash.
type runCursor struct {
	head uint64
	mem  []uint64      // remaining in-memory hashes
	disk *bufio.Reader // or the run on disk
}

// advance moves head to the next hash; io.EOF when the run is done.
func (c *runCursor) advance() error {
	if c.disk == nil {
		if len(c.mem) == 0 {
			return io.EOF
		}
		c.head, c.mem = c.mem[0], c.mem[1:]
		return nil
	}
	var b [8]byte
	if _, err := io.ReadFull(c.disk, b[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("read spilled id hashes: %w", err)
	}
	c.head = binary.LittleEndian.Uint64(b[:])
	return nil
}

// runHeap orders run cursors by their head (container/heap.Interface).
type runHeap struct{ items []*runCursor }

func (h *runHeap) Len() int           { return len(h.items) }
func (h *runHeap) Less(i, j int) bool { return h.items[i].head < h.items[j].head }
func (h *runHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *runHeap) Push(x any)         { h.items = append(h.items, x.(*runCursor)) }
func (h *runHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}
