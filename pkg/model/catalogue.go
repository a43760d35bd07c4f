package model

import (
	"strconv"
	"strings"
)

// DefaultContextWindow is the context window assumed for a model that is neither configured with one
// nor in the catalogue. 8192 tokens is deliberately conservative: every current chat model offers at
// least that, and under-estimating only makes the selector escalate a long prompt to a model whose
// window is known, while over-estimating would send prompts that the API rejects.
const DefaultContextWindow = 8192

// Size thresholds, in billions of parameters, for names that state a size ("8b", "1.5b", "e2b").
const (
	tinyMaxParams  = 4  // up to 4b: Tiny
	smallMaxParams = 40 // below 40b: Small; 40b and up (and mixtures totalling that much): Large
	// Reasoning distills this small think aloud but lack the capacity for hard problems, so they are
	// treated as ordinary small models rather than as Reasoning.
	weakReasonerMaxParams = 8
)

// Normalize returns the catalogue key of a model id: lower case, without a provider or path prefix
// ("openai/", "meta-llama/", "models/"), an Ollama or OpenRouter tag (":free", ":latest", ":3b"), or a
// Vertex version ("@20240620"). "openrouter/meta-llama/Llama-3.3-70B-Instruct:free" becomes
// "llama-3.3-70b-instruct".
func Normalize(name string) string {
	s := strings.ToLower(strings.TrimSpace(name))
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexAny(s, ":@"); i >= 0 {
		s = s[:i]
	}
	return s
}

// FromName derives a model's category from its id alone, whatever the provider.
//
// The rules, first match wins:
//   - Reasoning: OpenAI o-series (o1, o3-mini, o4-mini...), gpt-oss, and any id with "reasoner",
//     "reasoning", "thinking", "r1", "qwq", "qvq" or "magistral" — except reasoning distills of 8b or
//     less ("deepseek-r1:7b"), which are Tiny or Small by size like any other model.
//   - Tiny: "nano", "lite" (including flash-lite), "micro", "tiny", or a stated size of at most 4b
//     ("3b", "1.5b", "e2b", "135m").
//   - Small: "mini", "flash", "haiku", "small", "instant", "scout", gpt-3.5, or a stated size below 40b.
//   - Large: "maverick" (whatever its active size), a stated size of 40b or more (a mixture "8x7b" counts its total), "large", "pro",
//     "opus", "sonnet", "ultra", "plus", "max", "medium", "maverick", gpt-4/4o/4.1/4.5/5, and the
//     flagship families (deepseek-chat/v3, grok, command-a, kimi-k2...).
//   - Anything else is assumed to be an ordinary chat model: Small.
//
// Only the empty name yields Unknown. The tier words win over a stated size, so "mistral-small-24b" is
// Small. Provider prefixes, tags (":free", ":latest") and dates are ignored, except that an Ollama size
// tag ("gemma2:2b") is read as a size and ":thinking" marks a reasoning variant.
func FromName(name string) Category {
	s := strings.ToLower(strings.TrimSpace(name))
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return Unknown
	}
	toks := strings.FieldsFunc(s, func(r rune) bool {
		return r == '-' || r == '_' || r == ':' || r == '@' || r == ' '
	})
	has := func(words ...string) bool {
		for _, t := range toks {
			for _, w := range words {
				if t == w {
					return true
				}
			}
		}
		return false
	}
	size := statedSize(toks)
	family := toks[0]

	reasoning := isOSeries(family) ||
		(family == "gpt" && has("oss")) ||
		has("reasoner", "reasoning", "thinking", "r1", "qwq", "qvq", "magistral") ||
		strings.HasPrefix(family, "qwq") || strings.HasPrefix(family, "magistral")
	if reasoning {
		if size > 0 && size <= weakReasonerMaxParams {
			if size <= tinyMaxParams {
				return Tiny
			}
			return Small
		}
		return Reasoning
	}

	switch {
	case has("nano", "lite", "micro", "tiny"):
		return Tiny
	case has("maverick"):
		return Large // llama-4-maverick-17b-128e: 17b active of 400b
	case has("mini", "flash", "haiku", "small", "instant", "scout") || strings.HasPrefix(family, "ministral"):
		if size > 0 && size <= tinyMaxParams {
			return Tiny // ministral-3b, phi-3-mini with a stated 3.8b
		}
		return Small
	}
	if size > 0 {
		switch {
		case size <= tinyMaxParams:
			return Tiny
		case size < smallMaxParams:
			return Small
		default:
			return Large
		}
	}
	switch {
	case has("large", "pro", "opus", "sonnet", "ultra", "plus", "max", "medium", "maverick"):
		return Large
	case family == "gpt" && len(toks) > 1 && strings.HasPrefix(toks[1], "3"):
		return Small // gpt-3.5-turbo
	case family == "gpt" || family == "chatgpt" || strings.HasPrefix(family, "gpt4") || strings.HasPrefix(family, "gpt5"):
		return Large // gpt-4, gpt-4o, gpt-4.1, gpt-4.5, gpt-5, chatgpt-4o-latest
	case family == "claude": // claude-2, claude-instant handled above, claude-3-opus handled above
		return Large
	case family == "grok", family == "kimi", family == "command" && has("a", "plus"):
		return Large
	case family == "deepseek" && has("chat", "v3", "v3.1", "v3.2", "v2.5"):
		return Large
	}
	return Small
}

// isOSeries reports whether a name's first token is an OpenAI o-series model: "o1", "o3", "o4"...
func isOSeries(tok string) bool {
	return len(tok) >= 2 && tok[0] == 'o' && allDigits(tok[1:])
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// statedSize returns the largest parameter count, in billions, that the name's tokens state, or 0.
// It reads "8b", "1.5b", "135m", Gemma 3n's effective "e2b", Cohere's "r7b" and mixtures "8x7b"
// (total 56). An active-parameter count ("a3b" in qwen3-30b-a3b) is used only when nothing else is
// stated, and counts of experts ("16e") or context ("128k", "32768") are not sizes.
func statedSize(toks []string) float64 {
	var total, active float64
	for _, t := range toks {
		if v, ok := parseSize(t); ok {
			if t[0] == 'a' {
				active = max(active, v)
			} else {
				total = max(total, v)
			}
		}
	}
	if total > 0 {
		return total
	}
	return active
}

// parseSize parses one token as a parameter count in billions.
func parseSize(t string) (float64, bool) {
	if len(t) < 2 {
		return 0, false
	}
	unit := t[len(t)-1]
	if unit != 'b' && unit != 'm' {
		return 0, false
	}
	num := t[:len(t)-1]
	// An optional one-letter prefix: e (effective), a (active), r (command-r7b).
	if c := num[0]; c == 'e' || c == 'a' || c == 'r' {
		num = num[1:]
	}
	mult := 1.0
	if i := strings.IndexByte(num, 'x'); i > 0 {
		n, err := strconv.Atoi(num[:i])
		if err != nil {
			return 0, false
		}
		mult, num = float64(n), num[i+1:]
	}
	if num == "" || num[0] < '0' || num[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	if unit == 'm' {
		if v < 10 {
			return 0, false // "1m" is a context length (qwen-turbo-1m), not 1 million parameters
		}
		v /= 1000
	}
	return v * mult, true
}

// Of returns the category of a configured model: configured (the config file's category field) when it
// names a category, else FromName(name).
//
// It takes the two fields rather than a *config.Model because pkg/config imports this package to
// validate categories; callers write model.Of(m.Name, m.Category).
func Of(name, configured string) Category {
	if c, err := ParseCategory(configured); err == nil && c != Unknown {
		return c
	}
	return FromName(name)
}

// ContextWindow returns a model's context window in tokens: configured (the config file's
// context_window) when positive, else the catalogue's value for the name (see LookupContextWindow),
// else DefaultContextWindow. Callers write model.ContextWindow(m.Name, m.ContextWindow).
//
// Local servers such as Ollama truncate to their own num_ctx whatever the model supports: configure
// context_window for them.
func ContextWindow(name string, configured int) int {
	if configured > 0 {
		return configured
	}
	if w, ok := LookupContextWindow(name); ok {
		return w
	}
	return DefaultContextWindow
}

// LookupContextWindow returns the context window the catalogue knows for a model id, matched on the
// longest known prefix of Normalize(name), and whether one was found. The values are the vendors'
// published windows (input and output together) as of 2025.
func LookupContextWindow(name string) (int, bool) {
	key := Normalize(name)
	best, window := -1, 0
	for _, e := range contextWindows {
		if len(e.prefix) > best && strings.HasPrefix(key, e.prefix) {
			best, window = len(e.prefix), e.window
		}
	}
	return window, best >= 0
}

// contextWindows maps normalised model-id prefixes to context windows; the longest matching prefix wins.
var contextWindows = [...]struct {
	prefix string
	window int
}{
	// OpenAI
	{"gpt-3.5-turbo", 16385},
	{"gpt-4", 8192},
	{"gpt-4-32k", 32768},
	{"gpt-4-turbo", 128000},
	{"gpt-4-1106", 128000},
	{"gpt-4-0125", 128000},
	{"gpt-4o", 128000},
	{"chatgpt-4o", 128000},
	{"gpt-4.1", 1047576},
	{"gpt-4.5", 128000},
	{"gpt-5", 400000},
	{"gpt-oss", 131072},
	{"o1", 200000},
	{"o1-mini", 128000},
	{"o1-preview", 128000},
	{"o3", 200000},
	{"o4-mini", 200000},
	// Anthropic
	{"claude-2", 100000},
	{"claude-2.1", 200000},
	{"claude-instant", 100000},
	{"claude-3", 200000},
	{"claude-sonnet-4", 200000},
	{"claude-opus-4", 200000},
	{"claude-haiku-4", 200000},
	// Google
	{"gemini-1.0-pro", 32760},
	{"gemini-pro", 32760},
	{"gemini-1.5-flash", 1048576},
	{"gemini-1.5-pro", 2097152},
	{"gemini-2.0-flash", 1048576},
	{"gemini-2.5", 1048576},
	{"gemma-7b", 8192},
	{"gemma-2", 8192},
	{"gemma2", 8192},
	{"gemma-3", 131072},
	{"gemma3", 131072},
	{"gemma-3-1b", 32768},
	// Meta
	{"llama-3-", 8192},
	{"llama3-", 8192},
	{"llama-3.1", 131072},
	{"llama-3.2", 131072},
	{"llama-3.3", 131072},
	{"llama3.1", 131072},
	{"llama3.2", 131072},
	{"llama3.3", 131072},
	{"llama-4", 131072},
	{"meta-llama-3.1", 131072},
	// Mistral
	{"mistral-7b", 32768},
	{"open-mistral-7b", 32768},
	{"mixtral-8x7b", 32768},
	{"mixtral-8x22b", 65536},
	{"mistral-small", 32768},
	{"mistral-medium", 131072},
	{"mistral-large", 131072},
	{"ministral", 131072},
	{"codestral", 256000},
	{"pixtral", 131072},
	{"magistral", 40000},
	// DeepSeek, Qwen and others
	{"deepseek-chat", 65536},
	{"deepseek-reasoner", 65536},
	{"deepseek-r1", 131072},
	{"deepseek-v3", 131072},
	{"qwen2.5", 32768},
	{"qwen-2.5", 32768},
	{"qwen3", 32768},
	{"qwq", 131072},
	{"phi-3-mini-4k", 4096},
	{"phi-3-mini-128k", 128000},
	{"phi-4", 16384},
	{"command-r", 128000},
	{"command-a", 256000},
	{"grok-2", 131072},
	{"grok-3", 131072},
	{"grok-4", 256000},
	{"kimi-k2", 131072},
}
