package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// api is the wire format of one request, chosen by its path.
type api int

const (
	apiOpenAI api = iota
	apiAnthropic
	apiGemini
)

func (a api) String() string {
	switch a {
	case apiAnthropic:
		return "anthropic"
	case apiGemini:
		return "gemini"
	}
	return "openai"
}

// call is the part of a request the simulator acts on, whatever its wire format.
type call struct {
	model     string
	texts     []string // message texts in order, system prompt first
	maxTokens int      // 0 = not given
}

// textOf extracts the text of a content that is a string, null, or an array of parts (OpenAI and
// Anthropic): the text parts' texts joined by "\n"; other parts are ignored.
func textOf(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case raw[0] == '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", err
		}
		texts := make([]string, 0, len(parts))
		for _, p := range parts {
			if p.Type == "text" || p.Type == "input_text" {
				texts = append(texts, p.Text)
			}
		}
		return strings.Join(texts, "\n"), nil
	}
	return "", errors.New("content must be a string or an array of content parts")
}

// parseOpenAI reads a chat completions body.
func parseOpenAI(body []byte) (*call, error) {
	var r struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		MaxTokens           *int `json:"max_tokens"`
		MaxCompletionTokens *int `json:"max_completion_tokens"`
		Stream              bool `json:"stream"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("we could not parse the JSON body of your request: %v", err)
	}
	switch {
	case r.Model == "":
		return nil, errors.New("you must provide a model parameter")
	case len(r.Messages) == 0:
		return nil, errors.New("'messages' must contain at least one message")
	case r.Stream:
		return nil, errors.New("stream: the simulator does not stream; send stream: false")
	}
	c := &call{model: r.Model, texts: make([]string, len(r.Messages))}
	for i, m := range r.Messages {
		t, err := textOf(m.Content)
		if err != nil {
			return nil, fmt.Errorf("messages[%d].content: %v", i, err)
		}
		c.texts[i] = t
	}
	var err error
	if c.maxTokens, err = positive("max_tokens", r.MaxTokens); err == nil && c.maxTokens == 0 {
		c.maxTokens, err = positive("max_completion_tokens", r.MaxCompletionTokens)
	}
	return c, err
}

func positive(name string, p *int) (int, error) {
	if p == nil {
		return 0, nil
	}
	if *p < 1 {
		return 0, fmt.Errorf("%s: %d is less than the minimum of 1", name, *p)
	}
	return *p, nil
}

// parseAnthropic reads a Messages API body; max_tokens is required, as on the real API.
func parseAnthropic(body []byte) (*call, error) {
	var r struct {
		Model    string          `json:"model"`
		System   json.RawMessage `json:"system"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		MaxTokens *int `json:"max_tokens"`
		Stream    bool `json:"stream"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %v", err)
	}
	switch {
	case r.Model == "":
		return nil, errors.New("model: Field required")
	case r.MaxTokens == nil:
		return nil, errors.New("max_tokens: Field required")
	case len(r.Messages) == 0:
		return nil, errors.New("messages: at least one message is required")
	case r.Stream:
		return nil, errors.New("stream: the simulator does not stream; send stream: false")
	}
	c := &call{model: r.Model, texts: make([]string, 0, len(r.Messages)+1)}
	sys, err := textOf(r.System)
	if err != nil {
		return nil, fmt.Errorf("system: %v", err)
	}
	if len(bytes.TrimSpace(r.System)) > 0 && string(bytes.TrimSpace(r.System)) != "null" {
		c.texts = append(c.texts, sys)
	}
	for i, m := range r.Messages {
		t, err := textOf(m.Content)
		if err != nil {
			return nil, fmt.Errorf("messages.%d.content: %v", i, err)
		}
		c.texts = append(c.texts, t)
	}
	c.maxTokens, err = positive("max_tokens", r.MaxTokens)
	return c, err
}

type geminiContent struct {
	Role  string `json:"role"`
	Parts []struct {
		Text *string `json:"text"`
	} `json:"parts"`
}

func (g *geminiContent) text() string {
	texts := make([]string, 0, len(g.Parts))
	for _, p := range g.Parts {
		if p.Text != nil {
			texts = append(texts, *p.Text)
		}
	}
	return strings.Join(texts, "\n")
}

type geminiGenConfig struct {
	MaxOutputTokens      *int `json:"maxOutputTokens"`
	MaxOutputTokensSnake *int `json:"max_output_tokens"`
}

// parseGemini reads a generateContent body (camelCase or snake_case field names, as the API accepts).
func parseGemini(model string, body []byte) (*call, error) {
	var r struct {
		Contents               []geminiContent  `json:"contents"`
		SystemInstruction      *geminiContent   `json:"systemInstruction"`
		SystemInstructionSnake *geminiContent   `json:"system_instruction"`
		GenerationConfig       *geminiGenConfig `json:"generationConfig"`
		GenerationConfigSnake  *geminiGenConfig `json:"generation_config"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("invalid JSON payload received: %v", err)
	}
	if len(r.Contents) == 0 {
		return nil, errors.New("* GenerateContentRequest.contents: contents is not specified")
	}
	c := &call{model: model, texts: make([]string, 0, len(r.Contents)+1)}
	sys := r.SystemInstruction
	if sys == nil {
		sys = r.SystemInstructionSnake
	}
	if sys != nil {
		c.texts = append(c.texts, sys.text())
	}
	for i := range r.Contents {
		c.texts = append(c.texts, r.Contents[i].text())
	}
	gc := r.GenerationConfig
	if gc == nil {
		gc = r.GenerationConfigSnake
	}
	if gc != nil {
		mt := gc.MaxOutputTokens
		if mt == nil {
			mt = gc.MaxOutputTokensSnake
		}
		var err error
		if c.maxTokens, err = positive("generation_config.max_output_tokens", mt); err != nil {
			return nil, err
		}
	}
	return c, nil
}
