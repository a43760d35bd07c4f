package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Answer shape. An answer is a sequence of space-separated words and every word counts as exactly one
// output token: the first word is Digest(texts), the rest are filler words picked from the digest.
const (
	// MinAnswerTokens is the shortest uncapped answer, in output tokens (words).
	MinAnswerTokens = 8
	// AnswerSpread bounds the digest-derived extra length: an uncapped answer has
	// MinAnswerTokens + (0 .. AnswerSpread-1) tokens, i.e. 8..128.
	AnswerSpread = 121
)

// filler is the vocabulary of the answers' filler words: plain ASCII, no JSON escaping needed.
var filler = [...]string{
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
	"india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
	"quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
	"yankee", "zulu", "amber", "basalt", "cedar", "dune", "ember", "fjord",
	"granite", "harbor", "iris", "jade", "kelp", "lagoon", "meadow", "nectar",
	"onyx", "pebble", "quartz", "river", "slate", "tundra", "umber", "valley",
	"willow", "yarrow", "zephyr", "acorn", "birch", "clover", "dahlia", "elm",
	"fern", "grove", "heather", "ivy", "juniper", "laurel", "maple", "oak",
}

// digest is sha256 of the texts joined by "\n".
func digest(texts []string) [sha256.Size]byte {
	h := sha256.New()
	for i, t := range texts {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(t))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func digestWord(sum [sha256.Size]byte) string { return "sim:" + hex.EncodeToString(sum[:8]) }

func answerLen(sum [sha256.Size]byte) int {
	return MinAnswerTokens + int(uint16(sum[8])<<8|uint16(sum[9]))%AnswerSpread
}

// Digest returns "sim:" followed by the first 16 hex digits of the sha256 of texts joined by "\n".
// texts are a request's message texts in order, the system prompt first (see the package doc). Every
// answer the simulator gives starts with this word, so a test can prove which request a result answers.
func Digest(texts []string) string { return digestWord(digest(texts)) }

// AnswerTokens returns the length in output tokens of the uncapped answer to texts:
// MinAnswerTokens plus a value in [0, AnswerSpread) taken from the digest.
func AnswerTokens(texts []string) int { return answerLen(digest(texts)) }

// Answer returns the uncapped answer to texts: AnswerTokens(texts) words separated by single spaces,
// the first being Digest(texts). It is a pure function of texts.
func Answer(texts []string) string {
	text, _, _ := Reply(texts, 0)
	return text
}

// Reply returns the answer the simulator sends for texts under a max_tokens of maxTokens (<= 0 means
// no cap): the first min(maxTokens, AnswerTokens(texts)) words of Answer(texts), that count (the
// usage's output tokens), and whether the cap cut the answer short (finish reason "length").
func Reply(texts []string, maxTokens int) (text string, outputTokens int, capped bool) {
	return reply(digest(texts), maxTokens)
}

func reply(sum [sha256.Size]byte, maxTokens int) (string, int, bool) {
	n := answerLen(sum)
	capped := false
	if maxTokens > 0 && maxTokens < n {
		n, capped = maxTokens, true
	}
	var b strings.Builder
	b.Grow(21 + n*8)
	b.WriteString(digestWord(sum))
	for i := 1; i < n; i++ {
		b.WriteByte(' ')
		b.WriteString(filler[(int(sum[i%len(sum)])+i*7)%len(filler)])
	}
	return b.String(), n, capped
}

// Prompt-token estimate: cheap and deterministic, the same for all three APIs.
const (
	// BytesPerToken is the divisor of the prompt estimate: each message text costs ceil(len/4) tokens.
	BytesPerToken = 4
	// MessageOverheadTokens is added per message (role and separators), as chat APIs do.
	MessageOverheadTokens = 4
	// ReplyPrimingTokens is added once per request (the assistant turn's header).
	ReplyPrimingTokens = 3
)

// PromptTokens is the simulator's prompt-token count for a request whose message texts are texts:
// the sum of ceil(len(text)/BytesPerToken) plus MessageOverheadTokens per message plus
// ReplyPrimingTokens. It is what usage reports as input tokens and what rate-limit admission charges.
func PromptTokens(texts []string) int {
	n := ReplyPrimingTokens
	for _, t := range texts {
		n += (len(t)+BytesPerToken-1)/BytesPerToken + MessageOverheadTokens
	}
	return n
}
