package request

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkReader reads a generated file of the three shapes (prompts of ~0.1–2 KB, a shared system
// prompt) and reports throughput in MB/s.
func BenchmarkReader(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	system := strings.Repeat("You are a careful assistant. Answer in English, cite sources. ", 20)
	const lines = 5000
	for i := range lines {
		text := strings.Repeat(fmt.Sprintf("Sentence %d of the document, with \"quotes\" and unicode: café. ", i), 1+i%30)
		switch i % 3 {
		case 0:
			fmt.Fprintf(w, `{"custom_id":"b%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":%q},{"role":"user","content":%q}],"max_tokens":200}}`+"\n", i, system, text)
		case 1:
			fmt.Fprintf(w, `{"id":"c%d","messages":[{"role":"user","content":%q},{"role":"assistant","content":"Noted."},{"role":"user","content":"Summarise it."}],"temperature":0.2,"metadata":{"row":%d}}`+"\n", i, text, i)
		default:
			fmt.Fprintf(w, `{"id":"p%d","prompt":%q,"system":%q,"category":"small"}`+"\n", i, text, system)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		rd := NewReader(in, path)
		n := 0
		for {
			_, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		in.Close()
		if n != lines {
			b.Fatalf("read %d requests, want %d", n, lines)
		}
	}
}

// BenchmarkIDHashesSpill finds the one duplicate among a million id hashes kept 64k at a time in
// memory (16 sorted runs on disk, the duplicate in memory), reporting ns per id.
func BenchmarkIDHashesSpill(b *testing.B) {
	const n = 1 << 20
	for b.Loop() {
		s := &idHashes{limit: 64 << 10, dir: b.TempDir()}
		for i := range uint64(n) {
			if err := s.add(i * 0x9E3779B97F4A7C15); err != nil {
				b.Fatal(err)
			}
		}
		if s.add(42); s.add(42) != nil || len(s.runs) != 16 {
			b.Fatalf("%d runs on disk", len(s.runs))
		}
		if _, repeats, err := s.duplicates(100); err != nil || repeats != 1 {
			b.Fatalf("repeats %d, %v", repeats, err)
		}
		s.close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/id")
}
