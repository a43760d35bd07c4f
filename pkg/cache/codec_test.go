package cache

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/provider"
)

func TestCodecRoundTrip(t *testing.T) {
	e := Entry{Provider: "openai", Model: "gpt-4o-mini", Content: "héllo\x00world", ToolCalls: json.RawMessage(`[{"id":"c1"}]`),
		FinishReason: "tool_calls", RequestID: "req_1", CostUSD: 0.0000766,
		Usage: provider.Usage{InputTokens: 31, OutputTokens: 120, CachedTokens: 7, ReasoningTokens: 9}}
	b := encode(&e)
	var got Entry
	if err := decode(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, e)
	}
	for i := range len(b) - 1 { // every truncation is an error, never a wrong entry
		if err := decode(b[:i], &got); err == nil {
			t.Fatalf("decoded a %d-byte prefix of %d", i, len(b))
		}
	}
	if err := decode(append([]byte{99}, b[1:]...), &got); err == nil {
		t.Error("decoded an entry of an unknown version")
	}
}
