// Command llmbatch runs large batches of LLM prompts across providers within their rate limits.
package main

import (
	"os"

	"github.com/llmbatch/llmbatch/cmd"
)

func main() { os.Exit(cmd.Main()) }
