package anthropic

import (
	"encoding/json"
	"fmt"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// EncodeParams returns the /v1/messages JSON body Complete sends for req (the client's default
// max_tokens applied). The batch client sends it as a Message Batch request's params.
func (c *Client) EncodeParams(req *provider.Request) ([]byte, error) {
	mr, err := c.buildRequest(req)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(mr)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// DecodeMessage reads a /v1/messages response body (a batch result's message) the way Complete
// does; model stands in when the body names none. RequestID is the message id.
func DecodeMessage(body []byte, model string) (*provider.Response, error) {
	var r messagesResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return fromMessage(&r, model)
}
