package apikey

import (
	"fmt"
	"hash/crc32"
	"math"
	"regexp"
	"strings"
	"unsafe"
)

// maxKeyLength is the longest credential any format accepts. Longer input
// is rejected at once, before a single character is examined.
const maxKeyLength = 128

const (
	alphabetBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	checksumLength = 6 // base62 digits that hold a 32-bit CRC
	minKeyLength   = 16
)

// FormatConfig describes a key format; NewFormat checks it.
type FormatConfig struct {
	// Name identifies the format in errors and docs. Required.
	Name string
	// LivePrefix starts every live key, such as "kg_live_". It may be empty
	// only in a format without test keys.
	LivePrefix string
	// TestPrefix starts every test (sandbox) key, such as "kg_test_". Empty:
	// the format has no test keys.
	TestPrefix string
	// Alphabet is the set of characters of the random part: 2 to 94
	// distinct printable ASCII characters.
	Alphabet string
	// Length is the number of random characters, at least 16.
	Length int
	// Checksum appends 6 base62 characters holding the CRC-32C of
	// everything before them, so typos and look-alikes are rejected
	// offline, before any store is asked.
	Checksum bool
}

// Format is a compiled key format: it makes keys, checks them (Parse) and
// knows their entropy. A Format is immutable and safe for concurrent use.
type Format struct {
	name     string
	live     string
	test     string
	hasTest  bool
	alphabet string
	length   int
	checksum bool
	total    int // length of the key without prefix
	// foreign is 0 for a byte of the alphabet and 1 for any other, so
	// that Parse checks the random part without a branch per byte.
	foreign [256]uint8
}

// NewFormat compiles a format. Its error says which field to change.
func NewFormat(c FormatConfig) (*Format, error) {
	f := &Format{
		name: c.Name, live: c.LivePrefix, test: c.TestPrefix, hasTest: c.TestPrefix != "",
		alphabet: c.Alphabet, length: c.Length, checksum: c.Checksum,
	}
	for i := range f.foreign {
		f.foreign[i] = 1
	}
	if f.name == "" {
		return nil, fmt.Errorf("%w: FormatConfig.Name is empty", ErrInvalid)
	}
	if len(f.alphabet) < 2 || len(f.alphabet) > 94 {
		return nil, fmt.Errorf("%w: format %s: Alphabet needs 2 to 94 characters", ErrInvalid, f.name)
	}
	for i := 0; i < len(f.alphabet); i++ {
		c := f.alphabet[i]
		if c <= ' ' || c >= 0x7f || f.foreign[c] == 0 {
			return nil, fmt.Errorf("%w: format %s: Alphabet must be distinct printable ASCII characters", ErrInvalid, f.name)
		}
		f.foreign[c] = 0
	}
	if f.length < minKeyLength {
		return nil, fmt.Errorf("%w: format %s: Length must be at least %d", ErrInvalid, f.name, minKeyLength)
	}
	f.total = f.length
	if f.checksum {
		f.total += checksumLength
	}
	switch {
	case f.hasTest && f.live == "":
		return nil, fmt.Errorf("%w: format %s: a format with a TestPrefix needs a LivePrefix", ErrInvalid, f.name)
	case f.hasTest && (strings.HasPrefix(f.live, f.test) || strings.HasPrefix(f.test, f.live)):
		return nil, fmt.Errorf("%w: format %s: prefixes %q and %q overlap", ErrInvalid, f.name, f.live, f.test)
	case len(f.live)+f.total > maxKeyLength || len(f.test)+f.total > maxKeyLength:
		return nil, fmt.Errorf("%w: format %s: keys would exceed %d characters", ErrInvalid, f.name, maxKeyLength)
	}
	for _, p := range []string{f.live, f.test} {
		for i := 0; i < len(p); i++ {
			if p[i] <= ' ' || p[i] >= 0x7f {
				return nil, fmt.Errorf("%w: format %s: prefix %q must be printable ASCII", ErrInvalid, f.name, p)
			}
		}
	}
	return f, nil
}

// FormatDefault is the recommended format: kg_live_ / kg_test_, 30 base62
// characters (178.6 bits) and a CRC-32C checksum that rejects typos offline
// and lets secret scanners recognise keys: 44 characters in all.
var FormatDefault = defaultFormat()

func defaultFormat() *Format {
	f, err := NewFormat(FormatConfig{
		Name: "keygate", LivePrefix: "kg_live_", TestPrefix: "kg_test_",
		Alphabet: alphabetBase62, Length: 30, Checksum: true,
	})
	if err != nil {
		panic(err)
	}
	return f
}

// Parse checks that key has this format and returns its environment. On
// failure the error is a *FormatError wrapping ErrMalformedKey; it never
// contains the key. Parse never panics and never allocates; input over 128
// bytes is rejected without being read.
func (f *Format) Parse(key string) (Environment, error) {
	switch {
	case key == "":
		return 0, errKeyEmpty
	case len(key) > maxKeyLength:
		return 0, errKeyTooLong
	}
	env, body, ok := f.cutPrefix(key)
	if !ok {
		return 0, errKeyPrefix
	}
	if len(body) != f.total {
		return 0, errKeyLength
	}
	if !f.inAlphabet(body[:f.length]) {
		return 0, errKeyAlphabet
	}
	if f.checksum {
		n := len(key) - checksumLength
		want, ok := decodeChecksum(key[n:]) // base62, whatever the body's alphabet
		if !ok {
			return 0, errKeyAlphabet
		}
		if checksumString(key[:n]) != want {
			return 0, errKeyChecksum
		}
	}
	return env, nil
}

// inAlphabet reports whether every byte of s is in the format's alphabet.
// It looks at every byte whatever it finds, four at a time: a key is
// short, and a loop without a branch per byte is faster than one that
// stops at the first stranger (Parse of a valid key: 36 → 21 ns).
func (f *Format) inAlphabet(s string) bool {
	var bad uint8
	for len(s) >= 4 {
		bad |= f.foreign[s[0]] | f.foreign[s[1]] | f.foreign[s[2]] | f.foreign[s[3]]
		s = s[4:]
	}
	for i := 0; i < len(s); i++ {
		bad |= f.foreign[s[i]]
	}
	return bad == 0
}

// Pattern is a regular expression (RE2) matching this format's keys in
// text, for a secret scanner or a pre-commit hook; Parse confirms a match.
func (f *Format) Pattern() string {
	var b strings.Builder
	b.WriteString(`(?:^|[^0-9A-Za-z_])(`)
	prefixes := []string{f.live}
	if f.hasTest {
		prefixes = append(prefixes, f.test)
	}
	b.WriteString("(?:")
	for i, p := range prefixes {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(regexp.QuoteMeta(p))
	}
	b.WriteString(")")
	b.WriteString(charClass(f.alphabet))
	fmt.Fprintf(&b, "{%d}", f.length)
	if f.checksum {
		fmt.Fprintf(&b, "%s{%d}", charClass(alphabetBase62), checksumLength)
	}
	b.WriteString(`)(?:$|[^0-9A-Za-z_])`)
	return b.String()
}

// charClass is a regexp character class of exactly the alphabet's bytes.
func charClass(alphabet string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < len(alphabet); i++ {
		c := alphabet[i]
		if strings.IndexByte(`\]^-[`, c) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte(']')
	return b.String()
}

// cutPrefix splits off the prefix. Live first: no prefix overlaps another,
// and a format whose live prefix is empty has no test keys.
func (f *Format) cutPrefix(key string) (Environment, string, bool) {
	if strings.HasPrefix(key, f.live) {
		return EnvLive, key[len(f.live):], true
	}
	if f.hasTest && strings.HasPrefix(key, f.test) {
		return EnvTest, key[len(f.test):], true
	}
	return 0, "", false
}

func (f *Format) prefixFor(env Environment) (string, bool) {
	switch {
	case env == EnvLive:
		return f.live, true
	case env == EnvTest && f.hasTest:
		return f.test, true
	}
	return "", false
}

// parseAny tries each format in order and returns the environment of the
// first match. When none matches it returns the error of a format whose
// prefix matched, if any, so that a bad checksum on a default-format key
// is reported as such.
func parseAny(formats []*Format, key string) (Environment, error) {
	var firstErr error
	for _, f := range formats {
		env, err := f.Parse(key)
		if err == nil {
			return env, nil
		}
		if firstErr == nil || (firstErr == errKeyPrefix && err != errKeyPrefix) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = errKeyPrefix
	}
	return 0, firstErr
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
		d[i] = alphabetBase62[v%62]
		v /= 62
	}
	return append(dst, d[:]...)
}

func decodeChecksum(s string) (uint32, bool) {
	if len(s) != checksumLength {
		return 0, false
	}
	d0, d1, d2, d3, d4, d5 := base62Value[s[0]], base62Value[s[1]], base62Value[s[2]],
		base62Value[s[3]], base62Value[s[4]], base62Value[s[5]]
	if (d0|d1|d2|d3|d4|d5)&0x40 != 0 { // 0xff: not a digit; a digit is < 64
		return 0, false
	}
	// The six products are independent: no chain of multiplications.
	v := uint64(d0)*(62*62*62*62*62) + uint64(d1)*(62*62*62*62) + uint64(d2)*(62*62*62) +
		uint64(d3)*(62*62) + uint64(d4)*62 + uint64(d5)
	if v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// base62Value is each byte's base62 value, 0xff for a byte that is not a
// base62 digit.
var base62Value = func() (t [256]uint8) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabetBase62); i++ {
		t[alphabetBase62[i]] = uint8(i)
	}
	return t
}()
