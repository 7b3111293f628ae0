package keyfill

import (
	"context"
	"testing"

	"github.com/keygate/apikey"
)

func TestFill(t *testing.T) {
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	s, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Fill(ctx, s, 100, Spec{Name: "load test", Scopes: []apikey.Scope{"read"}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 100 {
		t.Fatalf("%d digests, want 100", len(ds))
	}
	for _, d := range []apikey.Digest{ds[0], ds[99]} {
		k, err := s.Lookup(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "load test" || len(k.Scopes) != 1 || k.Scopes[0] != "read" || k.Environment != apikey.EnvLive {
			t.Errorf("filed %+v", k)
		}
	}
	// A key made properly afterwards files after the filled ones.
	created, _, err := s.Create(ctx, apikey.KeySpec{Name: "real", Scopes: []apikey.Scope{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, apikey.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 101 || all[len(all)-1].ID != created.ID {
		t.Errorf("List: %d keys, last %q; want 101, the created key last", len(all), all[len(all)-1].ID)
	}
	// Same seed, same digests.
	s2, _ := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	ds2, err := Fill(ctx, s2, 2, Spec{Name: "x", Seed: 1})
	if err != nil || ds2[0] != ds[0] || ds2[1] != ds[1] {
		t.Errorf("same seed gave other digests (%v)", err)
	}
}
