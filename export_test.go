package apikey

import (
	"fmt"
	"math"
)

// Describe names a format with the entropy of its random part, for the
// tests of package apikey_test.
func Describe(f *Format) string { return f.describe() }

// entropyBits is the entropy of the random part: Length × log2(|Alphabet|).
// The checksum adds none.
func (f *Format) entropyBits() float64 {
	return float64(f.length) * math.Log2(float64(len(f.alphabet)))
}

// describe names the format, with the entropy of its random part (Length
// × log2 of the alphabet's size; the checksum adds none).
func (f *Format) describe() string {
	return fmt.Sprintf("%s (%d random chars, %.1f bits, checksum=%t)", f.name, f.length, f.entropyBits(), f.checksum)
}
