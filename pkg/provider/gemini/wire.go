package gemini

import "github.com/llmbatch/llmbatch/pkg/provider"

// The wire format outside Complete, for the Batch API client: the same Codec, so batch and realtime
// requests are identical and batch results are validated and classified the same way.

// EncodeBody returns the :generateContent JSON body (a GenerateContentRequest) Complete sends for
// req (an inlined batch request).
func EncodeBody(req *provider.Request) ([]byte, error) { return Codec{}.Encode(req) }

// DecodeBody reads a :generateContent response body (an inlined batch response) as Complete does;
// model stands in when the body names none.
func DecodeBody(body []byte, model string) (*provider.Response, error) {
	return provider.DecodeWith(Codec{}, body, model)
}

// ParseError reads and classifies an error body (Codec.ParseError).
func ParseError(status int, body []byte) provider.ErrorInfo { return Codec{}.ParseError(status, body) }
