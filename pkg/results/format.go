package results

import (
	"fmt"
	"strings"
)

// Format is the shape of the lines in an output file.
type Format int

// The output formats selectable with --format (DESIGN §3).
const (
	// FormatDefault writes each Result as JSON, one object per line (DESIGN §3).
	FormatDefault Format = iota
	// FormatOpenAI writes OpenAI Batch API output lines
	// ({"id","custom_id","response":{"status_code","request_id","body"},"error"}) with one extra
	// top-level field, "request_hash", that resume needs and OpenAI readers ignore.
	FormatOpenAI
)

// String returns the name ParseFormat accepts for f: "default" or "openai".
func (f Format) String() string {
	switch f {
	case FormatDefault:
		return "default"
	case FormatOpenAI:
		return "openai"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses a --format value: "default" (or "") and "openai", case-insensitively.
// Anything else is an error naming the accepted values.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "default":
		return FormatDefault, nil
	case "openai":
		return FormatOpenAI, nil
	}
	return FormatDefault, fmt.Errorf("unknown output format %q (want default or openai)", s)
}

// Set parses s with ParseFormat into f, so *Format can serve as a pflag.Value.
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Type names the flag value type for help output ("format"), completing pflag.Value.
func (f *Format) Type() string { return "format" }
