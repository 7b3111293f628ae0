package storetest

import (
	"errors"
	"reflect"
	"slices"
	"time"

	"github.com/keygate/apikey"
)

// The management cases beyond create, revoke and roll: changing a key in
// place, switching it off and on, and listing a page at a time.

// An update changes the key in place: the same secret works with the new
// scopes at once, the change function sees the current key (a scope
// upgrade is read-modify-write), and what Update returns is what Get does.
func testUpdateInPlace(e *env) {
	e.needManager()
	k, s := e.create(apikey.KeySpec{Name: "before", Scopes: []apikey.Scope{"read"}, Metadata: map[string]string{"team": "a"}})
	if _, err := e.mw.Verify(e.ctx, s.Reveal()); err != nil {
		e.t.Fatalf("Verify before the update: %v", err)
	}
	expires := Epoch.Add(30 * 24 * time.Hour)
	got, err := e.mgr.Update(e.ctx, k.ID, func(k *apikey.Key) error {
		if !slices.Equal(k.Scopes, []apikey.Scope{"read"}) {
			return errors.New("the change function did not see the current scopes")
		}
		k.Name = "after"
		k.Scopes = append(k.Scopes, "write")
		k.ExpiresAt = expires
		k.Metadata = map[string]string{"team": "b"}
		return nil
	})
	e.must(err, "Update")
	want := k.Clone()
	want.Name, want.Scopes, want.ExpiresAt, want.Metadata = "after", []apikey.Scope{"read", "write"}, expires, map[string]string{"team": "b"}
	for what, k := range map[string]*apikey.Key{"Update's result": got, "Get": e.get(k.ID)} {
		if k.Name != want.Name || !slices.Equal(k.Scopes, want.Scopes) || !k.ExpiresAt.Equal(want.ExpiresAt) ||
			!reflect.DeepEqual(k.Metadata, want.Metadata) || k.ID != want.ID || k.Hint != want.Hint {
			e.t.Errorf("%s = %+v, want %+v", what, k, want)
		}
	}
	found, err := e.store.Lookup(e.ctx, e.keys.Digest(s.Reveal()))
	e.must(err, "Lookup after Update")
	if !slices.Equal(found.Scopes, want.Scopes) {
		e.t.Errorf("Lookup after Update: scopes %v, want %v", found.Scopes, want.Scopes)
	}
	e.wantReason(s, 0, "the same secret after the update")

	// Clearing: no expiry, no metadata, no scopes.
	got, err = e.mgr.Update(e.ctx, k.ID, func(k *apikey.Key) error {
		k.ExpiresAt, k.Metadata, k.Scopes = time.Time{}, nil, nil
		return nil
	})
	e.must(err, "Update clearing fields")
	if !got.ExpiresAt.IsZero() || len(got.Metadata) != 0 || len(got.Scopes) != 0 {
		e.t.Errorf("after clearing: %+v", got)
	}
}

// What an update cannot do, and that a refused update changes nothing.
func testUpdateRefusals(e *env) {
	e.needManager()
	k, _ := e.create(apikey.KeySpec{Name: "k", Scopes: []apikey.Scope{"read"}, Owner: "o1"})
	refused := errors.New("changed my mind")
	tests := []struct {
		name   string
		change func(*apikey.Key) error
		want   error
	}{
		{"an undeclared scope", func(k *apikey.Key) error { k.Scopes = []apikey.Scope{"delete"}; return nil }, apikey.ErrInvalid},
		{"an empty name", func(k *apikey.Key) error { k.Name = ""; return nil }, apikey.ErrInvalid},
		{"an expiry in the past", func(k *apikey.Key) error { k.ExpiresAt = Epoch.Add(-time.Hour); return nil }, apikey.ErrInvalid},
		{"another owner", func(k *apikey.Key) error { k.Owner = "o2"; return nil }, apikey.ErrInvalid},
		{"another environment", func(k *apikey.Key) error { k.Environment = apikey.EnvTest; return nil }, apikey.ErrInvalid},
		{"revoked by hand", func(k *apikey.Key) error { k.RevokedAt = Epoch; return nil }, apikey.ErrInvalid},
		{"the change function's error", func(k *apikey.Key) error { k.Name = "x"; return refused }, refused},
		{"no change function", nil, apikey.ErrInvalid},
	}
	for _, tt := range tests {
		_, err := e.mgr.Update(e.ctx, k.ID, tt.change)
		e.wantErr(err, tt.want, "Update with "+tt.name)
	}
	if got := e.get(k.ID); got.Name != "k" || !slices.Equal(got.Scopes, []apikey.Scope{"read"}) || got.Owner != "o1" || !got.RevokedAt.IsZero() {
		e.t.Errorf("refused updates changed the key: %+v", got)
	}

	revoked, _ := e.create(apikey.KeySpec{Name: "revoked"})
	e.must(e.mgr.Revoke(e.ctx, revoked.ID), "Revoke")
	_, err := e.mgr.Update(e.ctx, revoked.ID, func(k *apikey.Key) error { k.Name = "x"; return nil })
	e.wantErr(err, apikey.ErrRevoked, "Update of a revoked key")
	rolled, _ := e.create(apikey.KeySpec{Name: "rolled"})
	_, _, err = e.mgr.Roll(e.ctx, rolled.ID, time.Hour)
	e.must(err, "Roll")
	_, err = e.mgr.Update(e.ctx, rolled.ID, func(k *apikey.Key) error { k.Name = "x"; return nil })
	e.wantErr(err, apikey.ErrAlreadyRolled, "Update of a rolled key (in its grace period)")
}

// A disabled key is refused as a revoked one is, lists as disabled, and
// works again once enabled.
func testDisableAndEnable(e *env) {
	e.needManager()
	k, s := e.create(apikey.KeySpec{Name: "k", Scopes: []apikey.Scope{"read"}})
	other, _ := e.create(apikey.KeySpec{Name: "other"})
	setDisabled := func(on bool) {
		e.t.Helper()
		got, err := e.mgr.Update(e.ctx, k.ID, func(k *apikey.Key) error { k.Disabled = on; return nil })
		e.must(err, "Update Disabled")
		if got.Disabled != on {
			e.t.Fatalf("Update returned Disabled %v, want %v", got.Disabled, on)
		}
	}
	setDisabled(true)
	e.wantReason(s, apikey.ReasonRevoked, "a disabled key")
	if st := e.get(k.ID).State(e.clock.Now()); st != apikey.StateDisabled {
		e.t.Errorf("State of a disabled key = %v", st)
	}
	e.wantIDs(apikey.Filter{State: apikey.StateDisabled}, k.ID)
	e.wantIDs(apikey.Filter{State: apikey.StateActive}, other.ID)
	setDisabled(false)
	e.wantReason(s, 0, "an enabled key")
	e.wantIDs(apikey.Filter{State: apikey.StateDisabled})
	e.wantIDs(apikey.Filter{State: apikey.StateActive}, k.ID, other.ID)

	// Revocation wins over disabling, and is for ever.
	setDisabled(true)
	e.must(e.mgr.Revoke(e.ctx, k.ID), "Revoke a disabled key")
	if st := e.get(k.ID).State(e.clock.Now()); st != apikey.StateRevoked {
		e.t.Errorf("State of a revoked disabled key = %v", st)
	}
	_, err := e.mgr.Update(e.ctx, k.ID, func(k *apikey.Key) error { k.Disabled = false; return nil })
	e.wantErr(err, apikey.ErrRevoked, "enable a revoked key")
}

// List a page at a time: pages in List's order, After and Limit together
// with every filter, and the pages put together are the whole list.
func testListPages(e *env) {
	e.needManager()
	var all, o1 []string
	for i := range 7 {
		owner := "o2"
		if i%2 == 0 {
			owner = "o1"
		}
		k, _ := e.create(apikey.KeySpec{Name: "k", Owner: owner})
		all = append(all, k.ID)
		if owner == "o1" {
			o1 = append(o1, k.ID)
		}
		if i%3 != 0 {
			e.clock.Advance(time.Second) // some keys share a creation time: ties go by ID
		}
	}
	if got := e.ids(apikey.Filter{}); !slices.Equal(got, sortByList(e, all)) {
		e.t.Fatalf("List = %v", got)
	}
	for _, tt := range []struct {
		name  string
		f     apikey.Filter
		whole []string
	}{
		{"every key", apikey.Filter{}, e.ids(apikey.Filter{})},
		{"one owner", apikey.Filter{Owner: "o1"}, e.ids(apikey.Filter{Owner: "o1"})},
	} {
		if tt.name == "one owner" && len(tt.whole) != len(o1) {
			e.t.Errorf("List(owner o1) = %v, want the %d keys of o1", tt.whole, len(o1))
		}
		for _, size := range []int{1, 2, 3, 7, 8} {
			var got []string
			f := tt.f
			f.Limit = size
			for pages := 0; pages <= len(tt.whole)+1; pages++ {
				page := e.ids(f)
				if len(page) > size {
					e.t.Fatalf("%s, pages of %d: a page of %d", tt.name, size, len(page))
				}
				got = append(got, page...)
				if len(page) < size {
					break
				}
				f.After = page[len(page)-1]
			}
			if !slices.Equal(got, tt.whole) {
				e.t.Errorf("%s, pages of %d: %v, want %v", tt.name, size, got, tt.whole)
			}
		}
	}
	// After a key of another owner: the page starts after its place in
	// List's order.
	e.wantIDs(apikey.Filter{Owner: "o1", After: all[len(all)-1]})
	_, err := e.mgr.List(e.ctx, apikey.Filter{Limit: -1})
	e.wantErr(err, apikey.ErrInvalid, "a negative Limit")
}

// sortByList returns the IDs in List's order: by creation, then ID.
func sortByList(e *env, ids []string) []string {
	keys := make([]*apikey.Key, len(ids))
	for i, id := range ids {
		keys[i] = e.get(id)
	}
	slices.SortFunc(keys, func(a, b *apikey.Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}
