package model

import "testing"

func TestFromName(t *testing.T) {
	tests := []struct {
		name string
		want Category
	}{
		// OpenAI
		{"gpt-4o-mini", Small},
		{"gpt-4o-mini-2024-07-18", Small},
		{"gpt-4o", Large},
		{"gpt-4o-2024-08-06", Large},
		{"chatgpt-4o-latest", Large},
		{"gpt-4.1", Large},
		{"gpt-4.1-mini", Small},
		{"gpt-4.1-nano", Tiny},
		{"gpt-4-turbo", Large},
		{"gpt-3.5-turbo-0125", Small},
		{"gpt-5", Large},
		{"gpt-5-mini", Small},
		{"gpt-5-nano", Tiny},
		{"o1", Reasoning},
		{"o1-mini", Reasoning},
		{"o3-mini", Reasoning},
		{"o3-pro", Reasoning},
		{"o4-mini-2025-04-16", Reasoning},
		{"openai/gpt-oss-120b", Reasoning},
		{"openai/gpt-4o:extended", Large},
		// Anthropic
		{"claude-3-5-haiku-20241022", Small},
		{"claude-haiku-4-5", Small},
		{"claude-sonnet-4-5", Large},
		{"claude-3-5-sonnet@20240620", Large},
		{"claude-opus-4-1-20250805", Large},
		{"anthropic/claude-3.7-sonnet:thinking", Reasoning},
		{"claude-instant-1.2", Small},
		// Google
		{"gemini-2.5-flash", Small},
		{"gemini-2.5-flash-lite", Tiny},
		{"gemini-1.5-flash-8b", Small},
		{"gemini-2.5-pro", Large},
		{"models/gemini-1.5-pro-002", Large},
		{"gemini-2.0-flash-thinking-exp-01-21", Reasoning},
		{"google/gemini-2.0-flash-exp:free", Small},
		{"gemma2:2b", Tiny},
		{"gemma-3-12b-it", Small},
		{"gemma-3n-e4b-it", Tiny},
		// Meta on Groq, OpenRouter, Ollama
		{"llama-3.1-8b-instant", Small},
		{"llama-3.3-70b-versatile", Large},
		{"meta-llama/llama-3.3-70b-instruct:free", Large},
		{"meta-llama/Meta-Llama-3.1-405B-Instruct", Large},
		{"llama3.2:3b", Tiny},
		{"llama3.1:8b-instruct-q4_K_M", Small},
		{"meta-llama/llama-4-scout-17b-16e-instruct", Small},
		{"meta-llama/llama-4-maverick-17b-128e-instruct", Large},
		{"llama-3.2-90b-vision-preview", Large},
		// DeepSeek, Qwen, Mistral, others
		{"deepseek-r1-distill-llama-70b", Reasoning},
		{"deepseek-reasoner", Reasoning},
		{"deepseek/deepseek-r1:free", Reasoning},
		{"deepseek-r1:7b", Small},
		{"deepseek-r1-distill-qwen-1.5b", Tiny},
		{"deepseek-chat", Large},
		{"qwen/qwq-32b", Reasoning},
		{"qwq:latest", Reasoning},
		{"qwen3-235b-a22b-thinking-2507", Reasoning},
		{"qwen2.5:0.5b", Tiny},
		{"qwen/qwen3-30b-a3b", Small},
		{"qwen2.5-72b-instruct", Large},
		{"mistral-small", Small},
		{"mistral-small-3.1-24b-instruct", Small},
		{"mistral-large-2411", Large},
		{"mistral-tiny", Tiny},
		{"ministral-3b-latest", Tiny},
		{"ministral-8b-latest", Small},
		{"magistral-medium-2506", Reasoning},
		{"mixtral-8x7b-32768", Large},
		{"open-mistral-7b", Small},
		{"phi3:mini", Small},
		{"smollm2:135m", Tiny},
		{"command-r7b-12-2024", Small},
		{"command-r-plus", Large},
		{"grok-3-mini", Small},
		{"grok-4", Large},
		{"moonshotai/kimi-k2-instruct", Large},
		{"amazon/nova-micro-v1", Tiny},
		{"qwen-turbo-1m", Small}, // "1m" is a context length, not a size
		{"some-unheard-of-model", Small},
		{"  GPT-4O-MINI  ", Small},
		{"", Unknown},
	}
	for _, tt := range tests {
		if got := FromName(tt.name); got != tt.want {
			t.Errorf("FromName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := map[string]string{
		"openrouter/meta-llama/Llama-3.3-70B-Instruct:free": "llama-3.3-70b-instruct",
		"claude-3-5-sonnet@20240620":                        "claude-3-5-sonnet",
		"models/gemini-2.5-pro":                             "gemini-2.5-pro",
		"gemma2:2b":                                         "gemma2",
		" gpt-4o ":                                          "gpt-4o",
	}
	for in, want := range tests {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOf(t *testing.T) {
	tests := []struct {
		name, configured string
		want             Category
	}{
		{"gpt-4o-mini", "", Small},
		{"gpt-4o-mini", "large", Large},         // the config file wins
		{"my-finetune", "Reasoning", Reasoning}, // case-insensitive like the config loader
		{"llama3.2:3b", "bogus", Tiny},          // invalid (config validation rejects it): derive from the name
	}
	for _, tt := range tests {
		if got := Of(tt.name, tt.configured); got != tt.want {
			t.Errorf("Of(%q, %q) = %v, want %v", tt.name, tt.configured, got, tt.want)
		}
	}
}

func TestContextWindow(t *testing.T) {
	tests := []struct {
		name       string
		configured int
		want       int
	}{
		{"gpt-4o-mini", 0, 128000},
		{"gpt-4o-mini", 4096, 4096}, // configured wins
		{"gpt-4-0613", 0, 8192},
		{"gpt-4-turbo-2024-04-09", 0, 128000},
		{"gpt-4.1-nano", 0, 1047576},
		{"o1-mini", 0, 128000}, // longer prefix beats "o1"
		{"o1-2024-12-17", 0, 200000},
		{"claude-3-5-haiku-20241022", 0, 200000},
		{"gemini-1.5-pro-002", 0, 2097152},
		{"gemma-3-1b-it", 0, 32768},
		{"gemma-3-12b-it", 0, 131072}, // "gemma-3-1b" must not match
		{"llama-3.1-8b-instant", 0, 131072},
		{"llama-3-8b-instruct", 0, 8192},
		{"meta-llama/llama-3.3-70b-instruct:free", 0, 131072},
		{"llama3.2:3b", 0, 131072},
		{"mixtral-8x7b-32768", 0, 32768},
		{"some-unheard-of-model", 0, DefaultContextWindow},
		{"", 0, DefaultContextWindow},
	}
	for _, tt := range tests {
		if got := ContextWindow(tt.name, tt.configured); got != tt.want {
			t.Errorf("ContextWindow(%q, %d) = %d, want %d", tt.name, tt.configured, got, tt.want)
		}
	}
	if _, ok := LookupContextWindow("some-unheard-of-model"); ok {
		t.Error("LookupContextWindow found an unknown model")
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		tok  string
		want float64
		ok   bool
	}{
		{"8b", 8, true}, {"1.5b", 1.5, true}, {"e2b", 2, true}, {"a3b", 3, true}, {"8x7b", 56, true},
		{"135m", 0.135, true}, {"r7b", 7, true},
		{"1m", 0, false}, {"web", 0, false}, {"b", 0, false}, {"eb", 0, false}, {"128k", 0, false}, {"x7b", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSize(tt.tok)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %v, %v; want %v, %v", tt.tok, got, ok, tt.want, tt.ok)
		}
	}
}
