package apikey

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The string CRC used by Parse agrees with hash/crc32 for every length.
func TestCRCStringMatchesLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 2*MaxKeyLength; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		assert.Equal(t, crc32.ChecksumIEEE(b), crc32IEEEString(string(b)), "length %d", n)
	}
}
