package provider_test

import (
	"testing"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

func TestLimitZero(t *testing.T) {
	for s, want := range map[string]bool{
		"limit: 0, model: x":        true,
		"limit: 0":                  true,
		`limit: 0\nplease retry`:    true,
		"limit 0, used 0":           true,
		"limit: 0)":                 true,
		"limit: 10, model: x":       false,
		"limit: 0.5":                false,
		"limit: 05":                 false,
		"limit: 0s":                 false,
		"ratelimit: 0":              false,
		"limit: 100000, used 99754": false,
	} {
		if got := provider.LimitZero.MatchString(s); got != want {
			t.Errorf("%q: match = %v, want %v", s, got, want)
		}
	}
}

// TestVocabularyClassify pins the shared decision order on a made-up dialect: overloaded and quota
// win over any status, then the status, refined for 429, 403 and the other 4xx.
func TestVocabularyClassify(t *testing.T) {
	v := provider.Vocabulary{
		Overloaded:    provider.Terms{Tokens: []string{"busy"}},
		Quota:         provider.Terms{Phrases: []string{"no money"}, Pattern: provider.LimitZero},
		TooLargeRate:  provider.Terms{Phrases: []string{"too big"}},
		Auth:          provider.Terms{Tokens: []string{"bad_key"}},
		Precondition:  provider.Terms{Tokens: []string{"wrong_region"}},
		ContextLength: provider.Terms{Phrases: []string{"too long"}},
		ContentFilter: provider.Terms{Tokens: []string{"unsafe"}},
	}
	for _, tc := range []struct {
		status int
		info   provider.ErrorInfo
		body   string
		want   provider.ErrorType
	}{
		{500, provider.ErrorInfo{Type: "busy"}, ``, provider.TypeOverloaded},
		{400, provider.ErrorInfo{}, `{"error":{"type":"busy"}}`, provider.TypeOverloaded},
		{429, provider.ErrorInfo{Message: "No money left"}, ``, provider.TypeQuotaExhausted},
		{429, provider.ErrorInfo{}, `quota limit: 0, model m`, provider.TypeQuotaExhausted},
		{429, provider.ErrorInfo{Message: "request too big for TPM"}, ``, provider.TypeContextLength},
		{429, provider.ErrorInfo{Message: "slow down"}, ``, provider.TypeRateLimit},
		{403, provider.ErrorInfo{Code: "unsafe"}, ``, provider.TypeContentFilter},
		{403, provider.ErrorInfo{}, ``, provider.TypePermission},
		{401, provider.ErrorInfo{Message: "prompt too long"}, ``, provider.TypeAuth}, // the status decides
		{400, provider.ErrorInfo{Code: "bad_key"}, ``, provider.TypeAuth},
		{400, provider.ErrorInfo{Type: "wrong_region"}, ``, provider.TypePermission},
		{422, provider.ErrorInfo{Message: "Prompt Too Long"}, ``, provider.TypeContextLength},
		{400, provider.ErrorInfo{}, `{"reason":"unsafe"}`, provider.TypeContentFilter},
		{400, provider.ErrorInfo{Message: "bad temperature"}, ``, provider.TypeBadRequest},
		{503, provider.ErrorInfo{}, `<html>`, provider.TypeServerError},
		{529, provider.ErrorInfo{}, ``, provider.TypeOverloaded},
		{302, provider.ErrorInfo{}, ``, provider.TypeInvalidResponse},
	} {
		if got := v.Classify(tc.status, tc.info, []byte(tc.body)); got != tc.want {
			t.Errorf("Classify(%d, %+v, %q) = %s, want %s", tc.status, tc.info, tc.body, got, tc.want)
		}
	}
}
