package apikey_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/cache"
	"github.com/keygate/apikey/internal/testkit"
	"github.com/keygate/apikey/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, keys apikey.KeyConfig) apikey.KeyStore {
		s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, keys apikey.KeyConfig) apikey.KeyStore {
		s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys, Path: filepath.Join(t.TempDir(), "keys.json")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestCacheContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, keys apikey.KeyConfig) apikey.KeyStore {
		s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		c, err := cache.New(s, cache.Config{Clock: keys.Clock})
		if err != nil {
			t.Fatal(err)
		}
		return cachedStore{c, s}
	})
}

// cachedStore is a Cache that can import keys into the store behind it, so
// that the contract suite can put keys in and look them up through it.
type cachedStore struct {
	*cache.Cache
	mem *apikey.MemoryStore
}

func (c cachedStore) Add(ctx context.Context, d apikey.Digest, k *apikey.Key) error {
	return c.mem.Add(ctx, d, k)
}

func TestLookupOnlyContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, keys apikey.KeyConfig) apikey.KeyStore {
		s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return testkit.StoreFunc(s.Lookup)
	})
}
