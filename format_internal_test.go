package apikey

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The string checksum used by Parse agrees with the byte one used by
// Generate, for every length.
func TestChecksumStringMatchesBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 2*MaxKeyLength; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		assert.Equal(t, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)), checksumString(string(b)), "length %d", n)
		assert.Equal(t, checksum(b), checksumString(string(b)))
	}
}
