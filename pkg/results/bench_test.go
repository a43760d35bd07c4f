package results

import (
	"fmt"
	"strings"
	"testing"
)

func BenchmarkWrite(b *testing.B) {
	for _, format := range []Format{FormatDefault, FormatOpenAI} {
		b.Run(format.String(), func(b *testing.B) {
			f, err := OpenAppend(outPath(b))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			w := NewWriter(f, format)
			r := okResult("prompt-000123", strings.Repeat("9f2c", 16), strings.Repeat("lorem ipsum ", 40))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Write(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "results/s")
		})
	}
}

func BenchmarkScan(b *testing.B) {
	const n = 100_000
	path := outPath(b)
	var rs []*Result
	for i := range n {
		r := okResult(fmt.Sprintf("prompt-%06d", i), strings.Repeat("9f2c", 16), strings.Repeat("lorem ipsum ", 40))
		if i%10 == 0 {
			r = errResult(r.CustomID, r.RequestHash, 429)
		}
		rs = append(rs, r)
	}
	writeResults(b, path, FormatDefault, rs...)
	b.SetBytes(int64(len(readFile(b, path))))
	b.ResetTimer()
	for b.Loop() {
		c, err := Scan(path, FormatDefault)
		if err != nil {
			b.Fatal(err)
		}
		if c.Lines != n {
			b.Fatalf("%d lines", c.Lines)
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "lines/s")
}
