package apikey

import (
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"unsafe"
)

// MaxKeyLength is the longest credential any format accepts. Longer input is
// rejected at once, before a single character is examined.
const MaxKeyLength = 128

// Alphabets used by the ready-made formats.
const (
	AlphabetBase62      = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	AlphabetLowerAlnum  = "0123456789abcdefghijklmnopqrstuvwxyz"
	AlphabetLowerHex    = "0123456789abcdef"
	checksumLength      = 6 // base62 digits that hold a 32-bit CRC
	maxPrefixesInFormat = 4
)

// Prefix binds a key prefix to the environment it means.
type Prefix struct {
	Prefix      string
	Environment Environment
}

// FormatSpec describes a key format; NewFormat validates it.
type FormatSpec struct {
	// Name identifies the format in errors and docs.
	Name string
	// Prefixes lists each prefix and its environment. A format without a
	// prefix has one entry with an empty Prefix. No prefix may be a prefix
	// of another.
	Prefixes []Prefix
	// Alphabet is the set of characters of the random part (2 to 255
	// distinct ASCII characters).
	Alphabet string
	// Length is the number of random characters.
	Length int
	// Checksum appends 6 base62 characters holding the CRC-32C of
	// everything before them, so typos and look-alikes are rejected offline.
	Checksum bool
}

// Format is a compiled key format: it generates keys (Generate), checks
// them (Parse), and knows their entropy. A Format is immutable and safe for
// concurrent use.
type Format struct {
	name     string
	prefixes []Prefix
	alphabet string
	length   int
	checksum bool
	total    int // length of the key without prefix
	allowed  [256]bool
}

// NewFormat compiles a format specification.
func NewFormat(spec FormatSpec) (*Format, error) {
	f := &Format{
		name:     spec.Name,
		prefixes: append([]Prefix(nil), spec.Prefixes...),
		alphabet: spec.Alphabet,
		length:   spec.Length,
		checksum: spec.Checksum,
	}
	if f.name == "" {
		return nil, fmt.Errorf("%w: format needs a name", ErrInvalid)
	}
	if len(f.prefixes) == 0 || len(f.prefixes) > maxPrefixesInFormat {
		return nil, fmt.Errorf("%w: format %s needs 1 to %d prefixes", ErrInvalid, f.name, maxPrefixesInFormat)
	}
	if len(f.alphabet) < 2 || len(f.alphabet) > 255 {
		return nil, fmt.Errorf("%w: format %s alphabet must have 2 to 255 characters", ErrInvalid, f.name)
	}
	for i := 0; i < len(f.alphabet); i++ {
		c := f.alphabet[i]
		if c <= ' ' || c >= 0x7f || f.allowed[c] {
			return nil, fmt.Errorf("%w: format %s alphabet must be distinct printable ASCII", ErrInvalid, f.name)
		}
		f.allowed[c] = true
	}
	f.total = f.length
	if f.checksum {
		f.total += checksumLength
	}
	for i, p := range f.prefixes {
		if p.Environment != EnvLive && p.Environment != EnvTest {
			return nil, fmt.Errorf("%w: format %s prefix %q needs an environment", ErrInvalid, f.name, p.Prefix)
		}
		for j, q := range f.prefixes {
			if i != j && strings.HasPrefix(p.Prefix, q.Prefix) {
				return nil, fmt.Errorf("%w: format %s prefix %q overlaps %q", ErrInvalid, f.name, p.Prefix, q.Prefix)
			}
		}
		if len(p.Prefix)+f.total > MaxKeyLength {
			return nil, fmt.Errorf("%w: format %s keys would exceed %d characters", ErrInvalid, f.name, MaxKeyLength)
		}
	}
	if f.length < 16 {
		return nil, fmt.Errorf("%w: format %s needs at least 16 random characters", ErrInvalid, f.name)
	}
	return f, nil
}

// MustFormat is NewFormat for package-level variables; it panics on an
// invalid specification.
func MustFormat(spec FormatSpec) *Format {
	f, err := NewFormat(spec)
	if err != nil {
		panic(err)
	}
	return f
}

// The ready-made formats, one per seed API plus our recommended default.
var (
	// FormatDefault is the recommended format: kg_live_ / kg_test_, 30
	// base62 characters (178.6 bits) and a 6-character CRC-32C checksum, 44
	// characters in all. The checksum rejects typos offline, and the prefix
	// plus checksum let a secret scanner recognise a key with almost no
	// false positives (the GitHub token idea).
	FormatDefault = MustFormat(FormatSpec{
		Name:     "keygate",
		Prefixes: []Prefix{{"kg_live_", EnvLive}, {"kg_test_", EnvTest}},
		Alphabet: AlphabetBase62, Length: 30, Checksum: true,
	})

	// FormatStairoids is seeds 000/001: sk_live_ / sk_test_ + 32 base62
	// characters (190.5 bits), 40 characters in all.
	FormatStairoids = MustFormat(FormatSpec{
		Name:     "stairoids",
		Prefixes: []Prefix{{"sk_live_", EnvLive}, {"sk_test_", EnvTest}},
		Alphabet: AlphabetBase62, Length: 32,
	})

	// FormatStepsies is seed 002: sk_ + 48 lowercase hex characters (192
	// bits), 51 characters in all. Every key is live.
	FormatStepsies = MustFormat(FormatSpec{
		Name:     "stepsies",
		Prefixes: []Prefix{{"sk_", EnvLive}},
		Alphabet: AlphabetLowerHex, Length: 48,
	})

	// FormatStax is seed 003: 40 characters of [a-z0-9] (206.8 bits), no
	// prefix. Every key is live.
	FormatStax = MustFormat(FormatSpec{
		Name:     "stax",
		Prefixes: []Prefix{{"", EnvLive}},
		Alphabet: AlphabetLowerAlnum, Length: 40,
	})

	// FormatStraply is seed 004: stp_live_ / stp_test_ + 31 characters of
	// [a-z0-9] (160.3 bits), 40 characters in all.
	FormatStraply = MustFormat(FormatSpec{
		Name:     "straply",
		Prefixes: []Prefix{{"stp_live_", EnvLive}, {"stp_test_", EnvTest}},
		Alphabet: AlphabetLowerAlnum, Length: 31,
	})
)

// Name returns the format's name.
func (f *Format) Name() string { return f.name }

// Prefixes returns the format's prefixes and their environments.
func (f *Format) Prefixes() []Prefix { return append([]Prefix(nil), f.prefixes...) }

// EntropyBits is the entropy of the random part: Length × log2(|Alphabet|).
// The checksum adds none.
func (f *Format) EntropyBits() float64 {
	return float64(f.length) * math.Log2(float64(len(f.alphabet)))
}

// String describes the format without any key material.
func (f *Format) String() string {
	return fmt.Sprintf("%s (%d random chars, %.1f bits, checksum=%t)", f.name, f.length, f.EntropyBits(), f.checksum)
}

// Parse checks that key has this format and returns its environment. On
// failure it returns one of the *FormatError values (ErrKeyEmpty,
// ErrKeyTooLong, ErrKeyPrefix, ErrKeyLength, ErrKeyAlphabet,
// ErrKeyChecksum), all wrapping ErrMalformedKey. Parse never panics and
// never allocates; input over MaxKeyLength is rejected without being read.
func (f *Format) Parse(key string) (Environment, error) {
	switch {
	case key == "":
		return 0, ErrKeyEmpty
	case len(key) > MaxKeyLength:
		return 0, ErrKeyTooLong
	}
	env, body, ok := f.cutPrefix(key)
	if !ok {
		return 0, ErrKeyPrefix
	}
	if len(body) != f.total {
		return 0, ErrKeyLength
	}
	for i := 0; i < f.length; i++ {
		if !f.allowed[body[i]] {
			return 0, ErrKeyAlphabet
		}
	}
	if f.checksum {
		n := len(key) - checksumLength
		want, ok := decodeChecksum(key[n:]) // base62, whatever the body's alphabet
		if !ok {
			return 0, ErrKeyAlphabet
		}
		if checksumString(key[:n]) != want {
			return 0, ErrKeyChecksum
		}
	}
	return env, nil
}

func (f *Format) cutPrefix(key string) (Environment, string, bool) {
	for _, p := range f.prefixes {
		if strings.HasPrefix(key, p.Prefix) {
			return p.Environment, key[len(p.Prefix):], true
		}
	}
	return 0, "", false
}

func (f *Format) prefixFor(env Environment) (string, bool) {
	for _, p := range f.prefixes {
		if p.Environment == env {
			return p.Prefix, true
		}
	}
	return "", false
}

// HintFor returns the display hint of a key of this format: its prefix and
// its last four characters. It returns "" for a key that does not parse.
func (f *Format) HintFor(key string) string {
	if _, err := f.Parse(key); err != nil {
		return ""
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(key, p.Prefix) {
			return hint(p.Prefix, key)
		}
	}
	return ""
}

// ParseAny tries each format in order and returns the first match. When none
// matches it returns the error of the format whose prefix matched, if any,
// so that a bad checksum on a default-format key is reported as such.
func ParseAny(formats []*Format, key string) (*Format, Environment, error) {
	var firstErr error
	for _, f := range formats {
		env, err := f.Parse(key)
		if err == nil {
			return f, env, nil
		}
		if firstErr == nil || (firstErr == ErrKeyPrefix && err != ErrKeyPrefix) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = ErrKeyPrefix
	}
	return nil, 0, firstErr
}

// The checksum is CRC-32C (Castagnoli): the same error detection as the
// IEEE polynomial GitHub uses, and a single CPU instruction per 8 bytes on
// amd64 and arm64.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// checksumString is checksum over a string without copying it: the bytes
// are only read.
func checksumString(s string) uint32 {
	return crc32.Checksum(unsafe.Slice(unsafe.StringData(s), len(s)), crcTable)
}

// appendChecksum appends sum as 6 base62 digits, most significant first.
func appendChecksum(dst []byte, sum uint32) []byte {
	var d [checksumLength]byte
	v := uint64(sum)
	for i := checksumLength - 1; i >= 0; i-- {
		d[i] = AlphabetBase62[v%62]
		v /= 62
	}
	return append(dst, d[:]...)
}

func decodeChecksum(s string) (uint32, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		d, ok := base62Digit(s[i])
		if !ok {
			return 0, false
		}
		v = v*62 + uint64(d)
	}
	if v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

func base62Digit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'Z':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'z':
		return c - 'a' + 36, true
	}
	return 0, false
}
