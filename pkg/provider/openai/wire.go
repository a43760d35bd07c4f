package openai

import (
	"encoding/json"
	"fmt"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// EncodeBody returns the /chat/completions JSON body Complete sends for req. The batch client writes
// it as the body of a Batch API input line, so batch and realtime requests are identical.
func EncodeBody(req *provider.Request) ([]byte, error) {
	body, err := json.Marshal(buildRequest(req))
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return appendExtra(body, req), nil
}

// DecodeBody reads a /chat/completions response body (a Batch API output line's response.body) the
// way Complete does; model stands in when the body names none. RequestID is the body's id.
func DecodeBody(body []byte, model string) (*provider.Response, error) {
	var cr chatResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return fromChat(&cr, model)
}
