package legacy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/keygate/apikey"
)

// The schemes a Record may name. See the package documentation for the
// hash each one expects.
const (
	SchemeBcrypt       = "bcrypt"
	SchemeArgon2id     = "argon2id"
	SchemeDjangoPBKDF2 = "django-pbkdf2-sha256"
	SchemeDRF          = "drf-api-key"
	SchemeUnkey        = "unkey-sha256-base64"
	SchemePlaintext    = "plaintext"
)

// Record is a key of the old system: no secret, only that system's hash of
// it.
//
// Key is what the key becomes in this library's store: ID (1 to 128
// visible ASCII characters, unique), Name (default: the ID), Owner,
// Scopes, Environment (default apikey.EnvLive), Metadata, CreatedAt,
// ExpiresAt, Disabled. A record whose key is revoked (RevokedAt set) can
// never work: it is not loaded, and its key is refused as unknown. Hint,
// when empty, is made at migration from Prefix and the key's last four
// characters; PepperID is the current pepper's.
//
// Prefix is the beginning of the key that the old system showed (for
// Unkey its "start", for djangorestframework-api-key its prefix column):
// not secret. A credential can only be the key of a record it starts with.
// For the password-hash schemes (bcrypt, argon2id, django-pbkdf2-sha256,
// and drf-api-key with a Django password hash) it is required and is how
// the record is found without hashing: at least 4 bytes, and no record's
// lookup prefix may begin another's, so that a credential matches at most
// one record and costs at most one slow hash. For drf-api-key the lookup
// prefix is Prefix followed by its dot. For the fast schemes (drf-api-key's
// sha512$$, unkey-sha256-base64, plaintext) records are found by their
// digest and Prefix is optional: when set, it is checked.
//
// Hash is the old system's stored hash in its own encoding; Scheme names
// it (SchemeBcrypt…).
type Record struct {
	Key    apikey.Key `json:"key"`
	Prefix string     `json:"prefix,omitempty"`
	Hash   string     `json:"hash"`
	Scheme string     `json:"scheme"`
}

// maxLine bounds a line of ReadRecords' input.
const maxLine = 1 << 20

// ReadRecords reads records, one JSON object a line (blank lines are
// skipped), and checks each as New does, but for what needs the KeyConfig
// (declared scopes): a known scheme, a hash that scheme can read with
// parameters within bounds, a prefix as the scheme needs, a valid key ID,
// no ID, prefix or key given twice. Its errors name the line and wrap
// apikey.ErrInvalid; they never quote a hash.
func ReadRecords(r io.Reader) ([]Record, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		records []Record
		lines   []int
	)
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("legacy: ReadRecords: line %d: %w", n, err)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			rec, perr := parseRecord(line)
			if perr != nil {
				return nil, fmt.Errorf("legacy: ReadRecords: line %d: %w", n, perr)
			}
			records = append(records, rec)
			lines = append(lines, n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if _, err := buildIndex(records, nil, func(i int) string { return fmt.Sprintf("line %d", lines[i]) }); err != nil {
		return nil, fmt.Errorf("legacy: ReadRecords: %w", err)
	}
	return records, nil
}

// readLine returns the next line without its end, at most maxLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("%w: longer than %d bytes", apikey.ErrInvalid, maxLine)
		}
		if err != nil || !isPrefix {
			return line, err
		}
	}
}

// parseRecord decodes one line: a JSON object with no unknown field and
// nothing after it.
func parseRecord(line []byte) (Record, error) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return Record{}, fmt.Errorf("%w: not a record: %s", apikey.ErrInvalid, jsonProblem(err))
	}
	if dec.More() {
		return Record{}, fmt.Errorf("%w: more than one JSON value on the line", apikey.ErrInvalid)
	}
	return rec, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s: a JSON %s where %s is expected", typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "invalid value" // e.g. a bad time or environment; the value is not repeated
}
