// gen.mjs writes vectors.json: reference token counts from js-tiktoken (a port of OpenAI's tiktoken)
// for cl100k_base and o200k_base, used by pkg/tokens tests to assert exact equality.
//
// Rerun (needs network access to the npm registry once):
//
//	mkdir -p /tmp/vec && cd /tmp/vec && npm install js-tiktoken
//	node /path/to/repo/testdata/tokens/gen.mjs > /path/to/repo/testdata/tokens/vectors.json
//
// js-tiktoken is resolved from the current directory, so run it from where it was installed.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(pathToFileURL(process.cwd() + "/").href);
const { getEncoding } = await import(pathToFileURL(require.resolve("js-tiktoken")).href);

const encodings = ["cl100k_base", "o200k_base"];
const enc = Object.fromEntries(encodings.map((e) => [e, getEncoding(e)]));
// Special tokens are ordinary text here, as in tiktoken's encode_ordinary (and as the API counts a
// user who literally types "<|endoftext|>").
const count = (e, s) => enc[e].encode(s, [], []).length;

// A deterministic pseudo-random generator, so the long texts are the same on every run.
let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rand() * a.length)];

const words = ("the of and to in is that for it as was with be by on not he this are or his from at which " +
  "but have an they you were her she there been one all we their has would when if so no what up out who " +
  "tokenizer batch provider latency throughput reasoning internationalization rate-limit don't it's we'll " +
  "naïve café résumé Zürich façade coöperate 東京 数据 模型 données überprüfen").split(" ");
const punct = [".", ",", "!", "?", ";", ":", " -", " (see above)", "'s", "...", "\n", "\n\n", "  "];
function prose(n) {
  let s = "";
  while (s.length < n) {
    s += pick(words);
    s += rand() < 0.2 ? pick(punct) : "";
    s += rand() < 0.1 ? " " + Math.floor(rand() * 1e6) + " " : " ";
  }
  return s;
}

const goCode = `package main

import (
	"fmt"
	"strings"
)

// Count returns the number of words in s.
func Count(s string) int {
	n := 0
	for _, f := range strings.Fields(s) {
		if len(f) > 0 { n++ }
	}
	return n
}

func main() { fmt.Println(Count("hello, world")) }
`;

const pyCode = `def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

if __name__ == "__main__":
    print([fib(i) for i in range(20)])
`;

const strings = [
  "",
  " ",
  "a",
  "Hello, world!",
  "hello world",
  "The quick brown fox jumps over the lazy dog.",
  "I'm sure they'll say it's fine, but we've seen what DON'T and CAN'T do.",
  "'s 't 're 've 'm 'll 'd",
  "It’s a typographic apostrophe — and an em dash – and an en dash.",
  "naïve café résumé Zürich façade",
  "e\u0301 a\u0300 o\u0308 combining marks: cafe\u0301s",
  "Tiếng Việt có dấu: Xin chào thế giới",
  "مرحبا بالعالم، هذا نص عربي.",
  "नमस्ते दुनिया, यह हिंदी पाठ है।",
  "안녕하세요 세계! 한국어 텍스트입니다.",
  "こんにちは世界。日本語のテキストです、カタカナもあります。",
  "你好，世界！这是一个中文句子，用于测试分词器。机器学习模型需要大量数据。",
  "Привет, мир! Это русский текст.",
  "Γειά σου Κόσμε",
  "😀😃😄😁 emoji 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️",
  "🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖",
  "    four leading spaces",
  "trailing spaces    ",
  "tabs\tand\t\ttabs",
  "line one\nline two\r\nline three\n\n\nline six",
  "   \n\n\t  \n   ",
  " \u00a0 non-breaking\u00a0space",
  "12345678901234567890",
  "3.14159265358979323846",
  "1,000,000 and 1.000.000 and 1 000 000",
  "2024-10-22T13:45:00Z",
  "Call +1 (555) 123-4567 or email jane.doe+test@example.co.uk",
  "https://example.com/path/to/page?query=string&x=1#fragment",
  "/usr/local/bin/llmbatch --concurrency 64 -o out.jsonl",
  "C:\\Users\\Admin\\Documents\\file.txt",
  "a/b/c//d///e?!/\n/",
  "{\"custom_id\":\"a1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\",\"max_tokens\":200}}",
  goCode,
  pyCode,
  "SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100 GROUP BY u.id;",
  "| name | value |\n|------|-------|\n| a    | 1     |\n| b    | 2     |",
  "getHTTPResponseCode XMLHttpRequest iPhone15Pro snake_case_name kebab-case-name CONSTANT_VALUE",
  "HELLO WORLD THIS IS ALL CAPS",
  "SGVsbG8gd29ybGQhIFRoaXMgaXMgYmFzZTY0IGVuY29kZWQgdGV4dC4=",
  "deadbeefcafebabe0123456789abcdef",
  "$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$ and $e^{i\\pi}+1=0$",
  "<|endoftext|>",
  "before <|endoftext|> after <|im_start|>user<|im_end|> <|endofprompt|> <|fim_prefix|>",
  "!!!!!!!!!!!!!!!!",
  "......................................",
  "------------------------------------------------------------",
  "=====",
  "?!?!?! ... --- *** ### @@@",
  "Mixed: English, 中文, Русский, العربية, 123, emoji 🎉, code `x := 1`.",
  "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "Classify the sentiment of this review as positive, negative or neutral: \"The battery died after two days.\"",
  "You are a helpful assistant. Answer concisely and cite your sources.",
  "Prove that there are infinitely many primes. Think step by step.",
  "x".repeat(1000),
  "ab1".repeat(400),
  " ".repeat(300),
  "\n".repeat(50) + "end",
  // Long realistic texts: these exercise the splitter's exact cut points.
  prose(6000),
  prose(9000),
  goCode.repeat(6),
  "你好，世界！这是一个中文句子，用于测试分词器。".repeat(80),
  "9".repeat(5000),
];

// Generated inputs too big to store literally: a unit repeated. One long piece each, so they test
// the counter's merge on pathological input (where tiktoken's own loop is quadratic).
// 20 KB each: the reference BPE is quadratic on one long piece, so larger inputs take minutes here.
const generated = [
  { unit: "a", times: 20000 },
  { unit: "ab", times: 10000 },
  { unit: "!", times: 20000 },
  { unit: " ", times: 20000 },
  { unit: "数", times: 6000 },
  { unit: "xYz1_", times: 4000 },
];

// Chat message lists, totalled with the rule of OpenAI's cookbook (num_tokens_from_messages):
// 3 tokens per message, the encoded value of every field, +1 when a name is present, +3 for the reply.
const chats = [
  [{ role: "user", content: "Hello!" }],
  [
    { role: "system", content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English." },
    { role: "system", name: "example_user", content: "New synergies will help drive top-line growth." },
    { role: "system", name: "example_assistant", content: "Things working well together will increase revenue." },
    { role: "user", content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
  ],
  [
    { role: "system", content: "You are a terse classifier. Reply with one word." },
    { role: "user", content: "Is this spam? \"You won a FREE cruise!!! Click here\"" },
    { role: "assistant", content: "spam" },
    { role: "user", content: "And this? \"Lunch at 12:30 tomorrow?\"" },
  ],
  [
    { role: "developer", content: "Answer in French." },
    { role: "user", name: "alice", content: "Quelle est la capitale du Japon ? 東京ですか？" },
  ],
  [{ role: "user", content: goCode + "\nWhat does this program print?" }],
  [{ role: "user", content: "" }],
];

const out = { encodings, strings: [], generated: [], chats: [] };
for (const s of strings) {
  out.strings.push({ text: s, counts: Object.fromEntries(encodings.map((e) => [e, count(e, s)])) });
}
for (const g of generated) {
  const s = g.unit.repeat(g.times);
  out.generated.push({ ...g, counts: Object.fromEntries(encodings.map((e) => [e, count(e, s)])) });
}
for (const messages of chats) {
  const totals = {};
  for (const e of encodings) {
    let n = 3;
    for (const m of messages) {
      n += 3;
      for (const [k, v] of Object.entries(m)) {
        n += count(e, v);
        if (k === "name") n += 1;
      }
    }
    totals[e] = n;
  }
  out.chats.push({ messages, totals });
}
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
