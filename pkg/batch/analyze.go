package batch

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/llmbatch/llmbatch/pkg/analyze"
	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/selector"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

// Analyze streams the prepared input and calls fn for each request with its selector item, in input
// order and never concurrently, analysing on workers goroutines (GOMAXPROCS when <= 0). It stops at
// the first error of reading or of fn, or when ctx is done. estimate and select plan from it; Run
// sends from it.
func (p *Prepared) Analyze(ctx context.Context, workers int, fn func(*Analyzed) error) error {
	an := newAnalyzer(p.Lanes)
	an.shard = p.Shard
	return analyzeInput(ctx, p.Input, an, workers, fn)
}

// Analyzed is one request after analysis, handed to the consumer in input order.
type Analyzed struct {
	Req    *request.Request
	Item   selector.Item
	Reason string // the analyser's explanation of the category
}

// analyzer turns requests into selector items: token counts for each encoding the lanes use, the
// analyser's category (or the request's hint) and the expected output. It is safe for concurrent use.
type analyzer struct {
	encodings []selector.Encoding
	// count returns the request's input tokens under an encoding ("" = estimate) and whether exact.
	// It returns early (inexact) once ctx is done.
	count func(ctx context.Context, req *request.Request, encoding string) (int, bool)
	// profile returns the analyser's category, complexity and reason for a request.
	profile func(req *request.Request, inputTokens int) (model.Category, float64, string)
	// output returns the expected output tokens of a request served at a category.
	output func(req *request.Request, cat model.Category) int
	// shard keeps only its prompts (the zero Shard keeps all).
	shard request.Shard
}

// newAnalyzer wires the token calculator and the request analyser for the encodings the lanes use.
func newAnalyzer(lanes []*selector.Lane) *analyzer {
	calc := tokens.New()
	_ = calc.Warm() // on failure counts fall back to an estimate, marked inexact
	return &analyzer{
		encodings: usedEncodings(lanes),
		count:     calc.InputContext,
		profile: func(req *request.Request, in int) (model.Category, float64, string) {
			p := analyze.Analyze(req, in)
			return p.Category, p.Complexity, p.Reason
		},
		output: tokens.OutputTokens,
	}
}

// usedEncodings lists the encodings the lanes need, EncEstimate first when any lane needs it.
func usedEncodings(lanes []*selector.Lane) []selector.Encoding {
	var used [selector.NumEncodings]bool
	for _, l := range lanes {
		used[l.Encoding] = true
	}
	var out []selector.Encoding
	for e, ok := range used {
		if ok {
			out = append(out, selector.Encoding(e))
		}
	}
	return out
}

// item analyses one request.
func (a *analyzer) item(ctx context.Context, req *request.Request, index int) Analyzed {
	it := selector.Item{Index: index, ID: req.ID, PinModel: req.Model, MaxOutputTokens: req.MaxTokens}
	ref := 0
	for _, e := range a.encodings {
		n, exact := a.count(ctx, req, e.Name())
		it.InputTokens[e], it.Exact[e] = n, exact
		if ref == 0 || exact {
			ref = n
		}
	}
	cat, complexity, reason := a.profile(req, ref) // the analyser honours the request's category hint
	it.Category, it.Complexity = cat, complexity
	it.OutputTokens = a.output(req, cat)
	return Analyzed{Req: req, Item: it, Reason: reason}
}

// source streams the input's requests with their selector items, analysed in parallel and
// handed over in input order: the prompt source of Run.
func (p *Prepared) source() Source {
	an := newAnalyzer(p.Lanes)
	an.shard = p.Shard
	return func(ctx context.Context, yield func(*request.Request, selector.Item) error) error {
		return analyzeInput(ctx, p.Input, an, 0, func(a *Analyzed) error { return yield(a.Req, a.Item) })
	}
}

// analysisBatch is a run of consecutive requests analysed by one worker.
type analysisBatch struct {
	first int
	reqs  []*request.Request
	out   []Analyzed
	done  chan struct{}
}

// Batches close at this many requests or this much text, bounding memory in flight.
const (
	batchRequests = 64
	batchBytes    = 1 << 20
)

// analyzeInput streams the input, analyses requests on `workers` goroutines (GOMAXPROCS when <= 0)
// and calls fn for each request in input order, never concurrently. Memory stays bounded by a few
// batches per worker. It stops at the first error of reading or of fn, or when ctx is done.
func analyzeInput(ctx context.Context, in *request.Input, a *analyzer, workers int, fn func(*Analyzed) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	r, err := in.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	g, ctx := errgroup.WithContext(ctx)
	work := make(chan *analysisBatch, workers)
	order := make(chan *analysisBatch, 2*workers)

	g.Go(func() error { // reader
		defer close(work)
		defer close(order)
		rd := request.NewReader(r, in.Name())
		index := 0
		b := &analysisBatch{done: make(chan struct{})}
		size := 0
		send := func() error {
			for _, ch := range []chan *analysisBatch{order, work} {
				select {
				case ch <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			b, size = &analysisBatch{first: index, done: make(chan struct{})}, 0
			return nil
		}
		for {
			req, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("read input: %w", err)
			}
			if !a.shard.Has(req.ID) {
				continue
			}
			b.reqs = append(b.reqs, req)
			index++
			for _, m := range req.Messages {
				size += len(m.Content.Text)
				for _, p := range m.Content.Parts {
					size += len(p.Text) + len(p.Raw)
				}
			}
			if len(b.reqs) >= batchRequests || size >= batchBytes {
				if err := send(); err != nil {
					return err
				}
			}
		}
		if len(b.reqs) > 0 {
			return send()
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for b := range work {
				b.out = make([]Analyzed, len(b.reqs))
				for i, req := range b.reqs {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					b.out[i] = a.item(ctx, req, b.first+i)
				}
				close(b.done)
			}
			return nil
		})
	}
	g.Go(func() error { // consumer side: hand results over in order
		for b := range order {
			select {
			case <-b.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			for i := range b.out {
				if err := fn(&b.out[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return g.Wait()
}
