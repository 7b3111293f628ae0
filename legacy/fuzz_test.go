package legacy_test

import (
	"strings"
	"testing"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/legacy"
)

// ReadRecords never panics, and what it accepts New accepts.
func FuzzReadRecords(f *testing.F) {
	f.Add(`{"key":{"id":"key_1","name":"one"},"prefix":"lg_1_","scheme":"bcrypt","hash":"$2y$10$Ju2pDh6bf6SHQIRCvMZ64e7ndiwThd2P6dKOh9IxJLM2rJZsBwO2O"}`)
	f.Add(`{"key":{"id":"key_1"},"prefix":"ab","scheme":"drf-api-key","hash":"sha512$$` + strings.Repeat("0", 128) + `"}`)
	f.Add(`{"key":{"id":"k"},"scheme":"argon2id","prefix":"lg_a_","hash":"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"}`)
	f.Add(`{"key":{"id":"k"},"scheme":"plaintext","hash":"k"}` + "\n" + `{"key":{"id":"k"},"scheme":"unkey-sha256-base64","hash":"CptSN3vQ0shZLIsdT5c/tlpeFK/qqxY0R/aQNCfKhWs="}`)
	f.Fuzz(func(t *testing.T, input string) {
		records, err := legacy.ReadRecords(strings.NewReader(input))
		if err != nil {
			return
		}
		e := newEnv(t, legacy.Config{})
		if _, err := legacy.New(e.store, legacy.Config{Keys: apikey.KeyConfig{Formats: e.keys.Formats}, Records: records}); err != nil {
			t.Fatalf("ReadRecords accepted what New refuses: %v", err)
		}
	})
}

// Fallback never panics on a hostile credential, and refuses every one but
// the keys it holds.
func FuzzFallback(f *testing.F) {
	rec, key := cheapRecord(f, "key_a")
	var records []legacy.Record
	records = append(records, rec)
	for _, vec := range loadVectors(f) {
		if vec.Scheme != legacy.SchemeArgon2id && vec.Scheme != legacy.SchemeDjangoPBKDF2 && vec.Scheme != legacy.SchemeBcrypt {
			records = append(records, vec.record("key_"+vec.Name))
			f.Add(vec.Key)
		}
	}
	e := newEnv(f, legacy.Config{Records: records, MaxSlowPerSecond: 1 << 20})
	f.Add(key)
	f.Add(rec.Prefix)
	f.Add("")
	f.Add(strings.Repeat("\xff", 5000))
	f.Fuzz(func(t *testing.T, cred string) {
		k, err := e.v.Fallback(ctx, cred)
		if err == nil && k == nil {
			t.Fatal("no key and no error")
		}
		if err != nil && !isNotFound(err) {
			t.Fatalf("a 503 for a credential: %v", err)
		}
		if err != nil && len(cred) >= 8 && strings.Contains(err.Error(), cred) {
			t.Fatal("the error quotes the credential")
		}
	})
}
