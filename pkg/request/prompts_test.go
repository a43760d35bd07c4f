package request

import (
	"errors"
	"io"
	"os"
	"testing"
)

// The demo and other packages' tests use testdata/prompts.jsonl: it must stay valid and varied.
func TestSamplePrompts(t *testing.T) {
	const path = "../../testdata/prompts.jsonl"
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, errs := Validate(f, path)
	for _, err := range errs {
		t.Error(err)
	}
	if n < 220 {
		t.Errorf("%s has %d prompts, want at least 220", path, n)
	}

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	shapes := map[Shape]int{}
	var tools, formats, hints, metadata, maxTokens, multiTurn, pinned int
	systems := map[string]int{}
	rd := NewReader(f, path)
	for {
		req, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		shapes[req.Shape]++
		count := func(ok bool, c *int) {
			if ok {
				*c++
			}
		}
		count(req.Tools != nil, &tools)
		count(req.ResponseFormat != nil, &formats)
		count(req.Category != "", &hints)
		count(req.Metadata != nil, &metadata)
		count(req.MaxTokens > 0, &maxTokens)
		count(req.Model != "", &pinned)
		assistants := 0
		for _, m := range req.Messages {
			count(m.Role == "assistant", &assistants)
			if m.Role == "system" && len(m.Content.Text) > 1000 {
				systems[m.Content.Text]++
			}
		}
		count(assistants > 0, &multiTurn)
	}
	for _, s := range []Shape{ShapeBatch, ShapeChat, ShapePrompt} {
		if shapes[s] < 30 {
			t.Errorf("shape %d has %d prompts, want at least 30", s, shapes[s])
		}
	}
	longShared := 0
	for _, uses := range systems {
		if uses >= 10 {
			longShared++
		}
	}
	if longShared < 2 {
		t.Errorf("%d long system prompts are shared by 10+ lines, want at least 2", longShared)
	}
	for name, got := range map[string]int{"tools": tools, "response_format": formats, "category": hints,
		"metadata": metadata, "max_tokens": maxTokens, "multi-turn": multiTurn} {
		if got < 5 {
			t.Errorf("%d prompts with %s, want at least 5", got, name)
		}
	}
	if pinned > 0 {
		// The demo runs this file against testdata/providers.sim.yaml, which has only sim-* models.
		t.Errorf("%d prompts pin a model; the demo config could not serve them", pinned)
	}
}
