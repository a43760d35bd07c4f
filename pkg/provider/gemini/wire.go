package gemini

import (
	"encoding/json"
	"fmt"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

// EncodeBody returns the :generateContent JSON body (a GenerateContentRequest) Complete sends for
// req. The batch client sends it as an inlined batch request.
func EncodeBody(req *provider.Request) ([]byte, error) {
	gr, err := buildRequest(req)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(gr)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// DecodeBody reads a :generateContent response body (an inlined batch response) the way Complete
// does; model stands in when the body names none.
func DecodeBody(body []byte, model string) (*provider.Response, error) {
	var r generateResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return fromGenerate(&r, model)
}
