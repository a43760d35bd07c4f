package sim_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/pkg/sim"
)

func TestDigestIsSHA256OfJoinedTexts(t *testing.T) {
	texts := []string{"sys", "hello", "world"}
	sum := sha256.Sum256([]byte("sys\nhello\nworld"))
	if got, want := sim.Digest(texts), "sim:"+hex.EncodeToString(sum[:])[:16]; got != want {
		t.Fatalf("Digest = %q, want %q", got, want)
	}
	// The join matters: moving a boundary changes the digest.
	if sim.Digest([]string{"sys\nhello", "world"}) != sim.Digest(texts) {
		t.Fatal("joined texts with the same bytes must digest the same")
	}
	if sim.Digest([]string{"syshello", "world"}) == sim.Digest(texts) {
		t.Fatal("different texts gave the same digest")
	}
}

func TestAnswerDeterministicAndShaped(t *testing.T) {
	seen := map[string]bool{}
	lengths := map[int]bool{}
	for i := range 300 {
		texts := prompt(i)
		a := sim.Answer(texts)
		if a != sim.Answer(append([]string(nil), texts...)) {
			t.Fatal("Answer is not deterministic")
		}
		words := strings.Fields(a)
		if words[0] != sim.Digest(texts) {
			t.Fatalf("answer %q does not start with the digest", a)
		}
		n := sim.AnswerTokens(texts)
		if len(words) != n || n < sim.MinAnswerTokens || n >= sim.MinAnswerTokens+sim.AnswerSpread {
			t.Fatalf("answer has %d words, AnswerTokens %d", len(words), n)
		}
		if seen[a] {
			t.Fatalf("two prompts got the same answer %q", a)
		}
		seen[a] = true
		lengths[n] = true
	}
	if len(lengths) < 50 {
		t.Fatalf("answer lengths barely vary: %d distinct over 300 prompts", len(lengths))
	}
}

func TestReplyCapsAtMaxTokens(t *testing.T) {
	texts := prompt(3)
	n := sim.AnswerTokens(texts)
	full := sim.Answer(texts)
	for _, tc := range []struct {
		max, want int
		capped    bool
	}{{0, n, false}, {n, n, false}, {n + 5, n, false}, {n - 1, n - 1, true}, {1, 1, true}} {
		text, out, capped := sim.Reply(texts, tc.max)
		if out != tc.want || capped != tc.capped || len(strings.Fields(text)) != out || !strings.HasPrefix(full, text) {
			t.Errorf("Reply(max %d) = %d words, out %d, capped %v; want %d, %v", tc.max, len(strings.Fields(text)), out, capped, tc.want, tc.capped)
		}
	}
	if text, _, _ := sim.Reply(texts, 1); text != sim.Digest(texts) {
		t.Errorf("max_tokens 1 must still carry the digest, got %q", text)
	}
}

func TestPromptTokens(t *testing.T) {
	// ceil(len/4) + 4 per message + 3.
	if got := sim.PromptTokens([]string{"abcd", "abcde", ""}); got != 1+2+0+3*4+3 {
		t.Fatalf("PromptTokens = %d", got)
	}
}
