// Package model knows what kind of model a name denotes: its category (tiny, small, large, reasoning)
// and, for well-known models, its context window. It is provider-agnostic.
package model

import (
	"fmt"
	"strings"
)

// Category is the capability class of a model and of a request. The zero value is Unknown.
// Categories are ordered: a request of category c can be served by a model of category >= c.
type Category int

// The categories, cheapest first. Escalation goes up this ladder.
const (
	Unknown Category = iota
	Tiny
	Small
	Large
	Reasoning
)

// Categories lists the known categories in ladder order, cheapest first.
var Categories = [...]Category{Tiny, Small, Large, Reasoning}

// String returns the lower-case name used in config files, flags and output ("tiny", ...).
func (c Category) String() string {
	switch c {
	case Tiny:
		return "tiny"
	case Small:
		return "small"
	case Large:
		return "large"
	case Reasoning:
		return "reasoning"
	}
	return "unknown"
}

// ParseCategory parses a category name case-insensitively; the empty string yields Unknown and no error.
func ParseCategory(s string) (Category, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return Unknown, nil
	case "tiny":
		return Tiny, nil
	case "small":
		return Small, nil
	case "large":
		return Large, nil
	case "reasoning":
		return Reasoning, nil
	}
	return Unknown, fmt.Errorf("unknown category %q (want tiny, small, large or reasoning)", s)
}

// MarshalText writes the category's name.
func (c Category) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses a category name.
func (c *Category) UnmarshalText(b []byte) error {
	v, err := ParseCategory(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
