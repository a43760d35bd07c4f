package tokens

import (
	"fmt"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/request"
)

const benchProse = `Batch inference lets a team run a large set of prompts, such as classifying a quarter's support
tickets, summarising contracts or generating product descriptions, at a fraction of the interactive price.
The hard part isn't the API call: it's staying inside each provider's rate limits, retrying the failures
that deserve it (and only those), and knowing before you start what the run will cost. We'd rather spend
$12.40 on a cheaper model that answers 98.5% of the questions correctly than $310 on a flagship model.
`

const benchCode = "```go\n" + `// Retry calls f until it succeeds, the context ends, or attempts run out.
func Retry(ctx context.Context, attempts int, f func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("retry: %w", ctx.Err())
		case <-time.After(time.Duration(1<<i) * 100 * time.Millisecond):
		}
	}
	return fmt.Errorf("retry: %d attempts: %w", attempts, err)
}
` + "```\n"

// benchText returns about n bytes of English and code, each paragraph numbered so no two are equal.
func benchText(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Section %d.\n%s\n", i, benchProse)
		if i%2 == 1 {
			b.WriteString(benchCode)
		}
	}
	return b.String()
}

func BenchmarkCount(b *testing.B) {
	c := New()
	text := benchText(16 << 10)
	if err := c.Warm(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		c.Count(O200K, text)
	}
}

func BenchmarkCountParallel(b *testing.B) {
	c := New()
	text := benchText(16 << 10)
	if err := c.Warm(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Count(O200K, text)
		}
	})
}

func BenchmarkPathological(b *testing.B) {
	c := New()
	text := strings.Repeat("a", 100_000)
	if err := c.Warm(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		c.Count(O200K, text)
	}
}

// BenchmarkInputSharedSystem is the common batch case: a long shared system prompt (served by the
// cache) and a short distinct user message per request.
func BenchmarkInputSharedSystem(b *testing.B) {
	c := New()
	system := benchText(4 << 10)
	if err := c.Warm(); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		req := &request.Request{Messages: []request.Message{
			{Role: "system", Content: request.Content{Text: system}},
			{Role: "user", Content: request.Content{Text: fmt.Sprintf("Ticket %d: the export to CSV drops the last row.", i)}},
		}}
		c.Input(req, O200K)
	}
}
