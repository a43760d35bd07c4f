package openai

import "github.com/llmbatch/llmbatch/pkg/provider"

// The wire format outside Complete, for the Batch API client: the same Codec, so batch and realtime
// requests are identical and batch results are validated and classified the same way.

// EncodeBody returns the /chat/completions JSON body Complete sends for req (the body of a Batch
// API input line).
func EncodeBody(req *provider.Request) ([]byte, error) { return Codec{}.Encode(req) }

// DecodeBody reads a /chat/completions response body (a Batch API output line's response.body) as
// Complete does; model stands in when the body names none. RequestID is the body's id.
func DecodeBody(body []byte, model string) (*provider.Response, error) {
	return provider.DecodeWith(Codec{}, body, model)
}

// ParseError reads and classifies an error body (Codec.ParseError).
func ParseError(status int, body []byte) provider.ErrorInfo { return Codec{}.ParseError(status, body) }
