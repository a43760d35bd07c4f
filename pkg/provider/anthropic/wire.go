package anthropic

import "github.com/llmbatch/llmbatch/pkg/provider"

// The wire format outside Complete, for the Message Batches client: the same Codec, so batch and
// realtime requests are identical and batch results are validated and classified the same way.

// EncodeParams returns the /v1/messages JSON body Complete sends for req with the default
// max_tokens (a Message Batch request's params).
func EncodeParams(req *provider.Request) ([]byte, error) {
	return Codec{MaxTokens: DefaultMaxTokens}.Encode(req)
}

// DecodeMessage reads a /v1/messages response body (a batch result's message) as Complete does;
// model stands in when the body names none. RequestID is the message id.
func DecodeMessage(body []byte, model string) (*provider.Response, error) {
	return provider.DecodeWith(Codec{}, body, model)
}

// ParseError reads and classifies an error body (Codec.ParseError).
func ParseError(status int, body []byte) provider.ErrorInfo { return Codec{}.ParseError(status, body) }
