// Package corpus loads the analyser's labelled prompts (testdata/analyze/*.jsonl) for the held-out
// test and for the training step of go generate, so both read the corpus exactly the same way.
package corpus

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/llmbatch/llmbatch/pkg/model"
	"github.com/llmbatch/llmbatch/pkg/request"
	"github.com/llmbatch/llmbatch/pkg/tokens"
)

// Example is one labelled prompt.
type Example struct {
	Req    *request.Request
	Label  model.Category // metadata.label: the category a careful engineer would pay for
	Kind   string         // metadata.kind: lookup, chat, yesno, word, classify, …, proof, plan
	Lang   string         // metadata.lang: en, de, fr, es, zh, ja, ru
	Tokens int            // prompt tokens under o200k_base, as the analyser is given them
}

// Trivial reports whether the example is one of issue 13's trivial prompts (lookups, chit-chat,
// yes/no questions, single-word answers), which must reach the tiny category.
func (e *Example) Trivial() bool {
	switch e.Kind {
	case "lookup", "chat", "yesno", "word":
		return true
	}
	return false
}

type meta struct {
	Label string `json:"label"`
	Kind  string `json:"kind"`
	Lang  string `json:"lang"`
}

// Load reads a corpus file with the project's input reader and counts each prompt's tokens with
// calc. Every line must be a valid input line with metadata.label set and no category hint (a hint
// would bypass the analyser); any problem is an error naming the file and line.
func Load(path string, calc *tokens.Calculator) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := request.NewReader(f, path)
	var out []Example
	for {
		req, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var m meta
		if err := json.Unmarshal(req.Metadata, &m); err != nil {
			return nil, fmt.Errorf("%s:%d: metadata: %w (want {\"label\":…,\"kind\":…,\"lang\":…})", path, req.Line, err)
		}
		label, err := model.ParseCategory(m.Label)
		if err != nil || label == model.Unknown {
			return nil, fmt.Errorf("%s:%d: metadata.label %q is not tiny, small, large or reasoning", path, req.Line, m.Label)
		}
		if req.Category != "" {
			return nil, fmt.Errorf("%s:%d: category: a labelled prompt must not carry a hint (put the label in metadata.label)", path, req.Line)
		}
		n, _ := calc.Input(req, tokens.O200K)
		out = append(out, Example{Req: req, Label: label, Kind: m.Kind, Lang: m.Lang, Tokens: n})
	}
}
