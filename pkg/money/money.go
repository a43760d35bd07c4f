// Package money rounds and formats amounts of US dollars, so every cost llmbatch prints, in text or
// JSON, is free of binary floating-point noise (0.000009450000000000001 is 0.00000945).
package money

import (
	"math"
	"strconv"
	"strings"
)

// Precision is the smallest amount kept: 1e-10 USD, a ten-thousandth of the price of one token at
// $1 per million tokens, so rounding never changes a cost anyone could be billed.
const Precision = 1e-10

// Round returns usd rounded to a multiple of Precision. Amounts below $100,000 (15 significant
// digits at this precision) then print exactly as their decimal value with strconv's and
// encoding/json's shortest formatting. NaN and infinities are returned unchanged.
func Round(usd float64) float64 {
	if math.IsNaN(usd) || math.IsInf(usd, 0) {
		return usd
	}
	r := math.Round(usd/Precision) * Precision
	// Multiplying by 1e-10 may land one ulp off the double nearest the decimal; a decimal of at most
	// 15 significant digits reparses to exactly that nearest double.
	v, err := strconv.ParseFloat(strconv.FormatFloat(r, 'g', 15, 64), 64)
	if err != nil {
		return r
	}
	if v == 0 {
		return 0 // no "-0"
	}
	return v
}

// Format renders usd for people as "$" and a fixed-point number: four decimals, or as many as show
// three significant digits of a smaller amount (at most ten), with trailing zeros beyond the second
// decimal dropped: $5.1579, $0.2252, $0.00000945, $0.10, $0. The value is Round's, so a figure
// printed in text and in JSON agree.
func Format(usd float64) string {
	usd = Round(usd)
	if usd == 0 {
		return "$0"
	}
	if math.IsNaN(usd) || math.IsInf(usd, 0) {
		return "$" + strconv.FormatFloat(usd, 'f', -1, 64)
	}
	decimals := 4
	if a := math.Abs(usd); a < 0.01 {
		// leading zeros after the point plus three significant digits
		decimals = min(int(math.Ceil(-math.Log10(a)))+2, 10)
	}
	s := strconv.FormatFloat(usd, 'f', decimals, 64)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		keep := i + 3 // at least two decimals
		j := len(s)
		for j > keep && s[j-1] == '0' {
			j--
		}
		s = s[:j]
	}
	if strings.HasPrefix(s, "-") {
		return "-$" + s[1:]
	}
	return "$" + s
}
