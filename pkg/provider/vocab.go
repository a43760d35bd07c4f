package provider

import (
	"net/http"
	"regexp"
	"strings"
)

// Terms are the words by which an error body says one thing. All are lower case.
type Terms struct {
	// Tokens match the error's type or code exactly, or a JSON string value anywhere in the body
	// ("code":"insufficient_quota" carries `"insufficient_quota"`).
	Tokens []string
	// Phrases match anywhere in the message or the body.
	Phrases []string
	// Pattern, when set, is matched against the lower-cased message and body.
	Pattern *regexp.Regexp
}

// Vocabulary is how one API dialect words its errors. Each adapter package declares its own, so
// knowledge of a provider's error bodies lives in that provider's package; Classify applies the same
// decision to every dialect.
type Vocabulary struct {
	Overloaded    Terms // any status: overloaded (retry; Anthropic overloaded_error, Gemini "model is overloaded")
	Quota         Terms // any status: quota_exhausted (billing or quota gone; never retried)
	TooLargeRate  Terms // 429: the request alone exceeds the per-minute limit → context_length
	Auth          Terms // 4xx: auth (a bad key sent as 400)
	Precondition  Terms // 4xx: permission (Gemini FAILED_PRECONDITION: not available in the region)
	ContextLength Terms // 4xx: context_length
	ContentFilter Terms // 400/403: content_filter
}

// Classify returns the type of an error response of status whose body the dialect parsed into info:
// overloaded and quota first (they hide behind several statuses), then the status (StatusType)
// refined by the vocabulary: a 429 too large for the lane, a 403 safety refusal, and for the other
// 4xx auth, precondition, context length and content filter.
func (v *Vocabulary) Classify(status int, info ErrorInfo, body []byte) ErrorType {
	s := signals{
		typ:  strings.ToLower(info.Type),
		code: strings.ToLower(info.Code),
		msg:  strings.ToLower(info.Message),
		body: strings.ToLower(string(body)),
	}
	switch {
	case s.match(&v.Overloaded):
		return TypeOverloaded
	case s.match(&v.Quota):
		return TypeQuotaExhausted
	}
	t := StatusType(status)
	switch {
	case status == http.StatusTooManyRequests && s.match(&v.TooLargeRate):
		return TypeContextLength
	case status == http.StatusForbidden && s.match(&v.ContentFilter):
		return TypeContentFilter
	case t != TypeBadRequest:
		return t
	case s.match(&v.Auth):
		return TypeAuth
	case s.match(&v.Precondition):
		return TypePermission
	case s.match(&v.ContextLength):
		return TypeContextLength
	case s.match(&v.ContentFilter):
		return TypeContentFilter
	}
	return t
}

// Parse reads an error body with the dialect's parse and sets the Class of the result by Classify.
func (v *Vocabulary) Parse(status int, body []byte, parse func([]byte) ErrorInfo) ErrorInfo {
	info := parse(body)
	info.Class = v.Classify(status, info, body)
	return info
}

// signals is the lower-cased text an error response carries: the provider's type and code (exact
// tokens), its message, and the raw body (for fields the dialect did not lift out).
type signals struct {
	typ, code, msg, body string
}

func (s *signals) match(t *Terms) bool {
	for _, v := range t.Tokens {
		if s.typ == v || s.code == v || strings.Contains(s.body, `"`+v+`"`) {
			return true
		}
	}
	for _, p := range t.Phrases {
		if strings.Contains(s.msg, p) || strings.Contains(s.body, p) {
			return true
		}
	}
	return t.Pattern != nil && (t.Pattern.MatchString(s.msg) || t.Pattern.MatchString(s.body))
}

// LimitZero matches a quota whose limit is zero — Gemini's "Quota exceeded for metric: ..., limit: 0,
// model: ..." and OpenAI's "Limit 0, Used 0" — where waiting never helps. "limit: 0.5", "limit: 05"
// and "limit: 0s" do not match.
var LimitZero = regexp.MustCompile(`\blimit:? ?0(?:[,;\s)"'\\]|$)`)
