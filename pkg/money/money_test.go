package money

import (
	"encoding/json"
	"math"
	"regexp"
	"testing"
)

func TestRoundRemovesNoise(t *testing.T) {
	cases := []struct {
		in   float64
		want string // encoding/json's rendering
	}{
		{0.000009450000000000001, "0.00000945"},
		{5.1579479500000005, "5.15794795"},
		{0.1 + 0.2, "0.3"},
		{1234.56789012345678, "1234.5678901235"},
		{0.00000000004, "0"},
		{0.00000000005, "1e-10"}, // encoding/json writes exponents below 1e-6
		{-0.1 - 0.2, "-0.3"},
		{-0.00000000001, "0"},
		{0, "0"},
	}
	for _, c := range cases {
		b, err := json.Marshal(Round(c.in))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("Round(%v) marshals as %s, want %s", c.in, b, c.want)
		}
	}
}

// Sums of many small per-prompt costs are where noise accumulates; after Round no JSON number may
// carry more than ten decimals.
func TestRoundSumsHaveNoNoise(t *testing.T) {
	tenDecimals := regexp.MustCompile(`^-?\d+(\.\d{1,10})?$`)
	sum := 0.0
	for i := 1; i <= 20000; i++ {
		sum += float64(31*i%997) * 0.15 / 1e6 // an input price per token times a count
		b, _ := json.Marshal(Round(sum))
		if !tenDecimals.Match(b) {
			t.Fatalf("after %d additions Round(%v) marshals as %s", i, sum, b)
		}
	}
}

func TestRoundSpecialValues(t *testing.T) {
	if !math.IsNaN(Round(math.NaN())) || !math.IsInf(Round(math.Inf(1)), 1) {
		t.Fatal("NaN and Inf must pass through")
	}
}

func TestFormat(t *testing.T) {
	cases := map[float64]string{
		0:                       "$0",
		5.1579479500000005:      "$5.1579",
		0.2252:                  "$0.2252",
		0.1:                     "$0.10",
		0.000009450000000000001: "$0.00000945",
		0.0123456:               "$0.0123",
		0.00999:                 "$0.00999",
		1234.5:                  "$1234.50",
		-0.5:                    "-$0.50",
		0.00000000004:           "$0",
		0.0000000123:            "$0.0000000123",
	}
	for in, want := range cases {
		if got := Format(in); got != want {
			t.Errorf("Format(%v) = %q, want %q", in, got, want)
		}
	}
}
