package legacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/legacy"
	"github.com/keygate/apikey/storetest"
)

// vector is a test key and its hash made by the real tool
// (testdata/vectors.json; testdata/README.md says how).
type vector struct {
	Name, Scheme, Prefix, Key, Hash, Tool string
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	require.NoError(t, err)
	var file struct{ Vectors []vector }
	require.NoError(t, json.Unmarshal(b, &file))
	require.NotEmpty(t, file.Vectors)
	return file.Vectors
}

// record makes the record of vector v under key id.
func (v vector) record(id string) legacy.Record {
	return legacy.Record{
		Key:    apikey.Key{ID: id, Name: v.Name, Scopes: []apikey.Scope{"read"}},
		Prefix: v.Prefix, Hash: v.Hash, Scheme: v.Scheme,
	}
}

// wrong returns key with its last character changed.
func wrong(key string) string {
	last := key[len(key)-1]
	if last == 'x' {
		return key[:len(key)-1] + "y"
	}
	return key[:len(key)-1] + "x"
}

// env is a verifier over a memory store, with a manual clock.
type env struct {
	keys  apikey.KeyConfig
	clock *storetest.Clock
	store *apikey.MemoryStore
	v     *legacy.Verifier
}

var testScopes = func() *apikey.ScopeSet {
	s, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "write": {"read"}})
	if err != nil {
		panic(err)
	}
	return s
}()

func newKeys(clock *storetest.Clock) apikey.KeyConfig {
	return apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: testScopes, Clock: clock.Now}
}

func newEnv(t testing.TB, cfg legacy.Config) *env {
	t.Helper()
	clock := storetest.NewClock(storetest.Epoch)
	keys := newKeys(clock)
	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	require.NoError(t, err)
	cfg.Keys = keys
	v, err := legacy.New(store, cfg)
	require.NoError(t, err)
	return &env{keys: keys, clock: clock, store: store, v: v}
}

// cheapBcrypt is a bcrypt hash at the lowest cost, for tests that count
// rather than time verifications.
func cheapBcrypt(t testing.TB, key string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(key), bcrypt.MinCost)
	require.NoError(t, err)
	return string(h)
}

// cheapRecord is a bcrypt record of key id: prefix "lg_<id>_", key the
// prefix and 24 characters.
func cheapRecord(t testing.TB, id string) (legacy.Record, string) {
	t.Helper()
	prefix := "lg_" + id + "_"
	key := prefix + fmt.Sprintf("%024d", len(id)*7919)
	return legacy.Record{
		Key:    apikey.Key{ID: id, Name: "cheap " + id, Scopes: []apikey.Scope{"read"}},
		Prefix: prefix, Hash: cheapBcrypt(t, key), Scheme: legacy.SchemeBcrypt,
	}, key
}

func isNotFound(err error) bool { return errors.Is(err, apikey.ErrNotFound) }

var ctx = context.Background()

func keyOf(id string) apikey.Key {
	return apikey.Key{ID: id, Name: id, Scopes: []apikey.Scope{"read"}}
}
