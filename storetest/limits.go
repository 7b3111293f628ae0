package storetest

import (
	"reflect"
	"slices"
	"time"

	"github.com/keygate/apikey"
)

// The cases of a key's own limits and of its lineage: a store keeps both
// as given, hands them to the middleware with the key (Lookup), carries
// them over a roll and lets Update change the limits.

// suiteLimits are a limit of each kind, with every field set somewhere.
func suiteLimits() []apikey.Limit {
	return []apikey.Limit{
		{Name: "requests", Count: 100, Per: time.Minute, Burst: 20},
		{Name: "monthly", Count: 10000, Period: "month", Zone: "Europe/Paris"},
		{Name: "credits", Count: 500, Credits: true, Owner: true},
	}
}

// wantLimits reports a key whose limits are not want (none: nil or empty).
func (e *env) wantLimits(k *apikey.Key, want []apikey.Limit, what string) {
	e.t.Helper()
	if len(want) == 0 && len(k.Limits) == 0 {
		return
	}
	if !reflect.DeepEqual(k.Limits, want) {
		e.t.Errorf("%s: Limits = %+v, want %+v", what, k.Limits, want)
	}
}

// lookup returns the key a secret's digest finds.
func (e *env) lookup(s apikey.Secret, what string) *apikey.Key {
	e.t.Helper()
	k, err := e.store.Lookup(e.ctx, e.keys.Digest(s.Reveal()))
	e.must(err, "Lookup of "+what)
	return k
}

// listed returns the key with this ID from List.
func (e *env) listed(id string) *apikey.Key {
	e.t.Helper()
	list, err := e.mgr.List(e.ctx, apikey.Filter{})
	e.must(err, "List")
	i := slices.IndexFunc(list, func(k *apikey.Key) bool { return k.ID == id })
	if i < 0 {
		e.t.Fatalf("List does not return %s", id)
	}
	return list[i]
}

// A key's limits come back from Create, Get, Lookup and List as they were
// given, in their order; a key that is no successor has no lineage.
func testLimitsRoundTrip(e *env) {
	e.needManager()
	limits := suiteLimits()
	k, s := e.create(apikey.KeySpec{Name: "limited", Limits: limits})
	plain, plainSecret := e.create(apikey.KeySpec{Name: "unlimited"})
	limits[0].Count = 1 // the caller's slice is theirs
	want := suiteLimits()
	for what, got := range map[string]*apikey.Key{
		"Create's result": k, "Get": e.get(k.ID), "Lookup": e.lookup(s, "a limited key"), "List": e.listed(k.ID),
	} {
		e.wantLimits(got, want, what)
		if got.Lineage != "" {
			e.t.Errorf("%s: Lineage = %q, want none for a key that is no successor", what, got.Lineage)
		}
	}
	for what, got := range map[string]*apikey.Key{
		"Create's result": plain, "Get": e.get(plain.ID), "Lookup": e.lookup(plainSecret, "a key without limits"), "List": e.listed(plain.ID),
	} {
		e.wantLimits(got, nil, what+" of a key without limits")
	}
	e.wantReason(s, 0, "a key with limits") // the store's part ends at the key: no Limiter here
}

// A successor has its predecessor's limits, and the first key's ID as its
// lineage however long the chain.
func testRollKeepsLimitsAndLineage(e *env) {
	e.needManager()
	first, _ := e.create(apikey.KeySpec{Name: "chain", Limits: suiteLimits()})
	second, secondSecret, err := e.mgr.Roll(e.ctx, first.ID, time.Hour)
	e.must(err, "Roll")
	check := func(k *apikey.Key, s apikey.Secret, what string) {
		e.t.Helper()
		for how, got := range map[string]*apikey.Key{
			"Roll's result": k, "Get": e.get(k.ID), "Lookup": e.lookup(s, what), "List": e.listed(k.ID),
		} {
			e.wantLimits(got, suiteLimits(), what+", "+how)
			if got.Lineage != first.ID {
				e.t.Errorf("%s, %s: Lineage = %q, want the first key's ID %q", what, how, got.Lineage, first.ID)
			}
		}
	}
	check(second, secondSecret, "the successor")
	e.clock.Advance(time.Minute)
	third, thirdSecret, err := e.mgr.Roll(e.ctx, second.ID, time.Hour)
	e.must(err, "Roll of the successor")
	check(third, thirdSecret, "the successor's successor")
	if third.RolledFrom != second.ID {
		e.t.Errorf("the successor's successor: RolledFrom = %q, want %q", third.RolledFrom, second.ID)
	}
	if got := e.get(second.ID); got.Lineage != first.ID || got.RolledTo != third.ID {
		e.t.Errorf("the rolled successor: Lineage %q, RolledTo %q; want %q, %q", got.Lineage, got.RolledTo, first.ID, third.ID)
	}
	if got := e.get(first.ID); got.Lineage != "" {
		e.t.Errorf("the first key: Lineage = %q, want none", got.Lineage)
	}
	e.wantLimits(e.get(first.ID), suiteLimits(), "the first key, rolled")
}

// Update sets and clears a key's limits, and the same secret carries the
// new ones at once; an invalid limit is refused with ErrInvalid and
// changes nothing.
func testUpdateLimits(e *env) {
	e.needManager()
	k, s := e.create(apikey.KeySpec{Name: "k"})
	got, err := e.mgr.Update(e.ctx, k.ID, func(k *apikey.Key) error {
		k.Limits = suiteLimits()
		return nil
	})
	e.must(err, "Update setting limits")
	for what, got := range map[string]*apikey.Key{
		"Update's result": got, "Get": e.get(k.ID), "Lookup": e.lookup(s, "an updated key"), "List": e.listed(k.ID),
	} {
		e.wantLimits(got, suiteLimits(), what+" after setting limits")
	}

	// Changing one limit: the change function sees the current ones.
	got, err = e.mgr.Update(e.ctx, k.ID, func(k *apikey.Key) error {
		k.Limits = slices.Clone(k.Limits)
		k.Limits[0].Count = 200
		return nil
	})
	e.must(err, "Update changing a limit")
	want := suiteLimits()
	want[0].Count = 200
	e.wantLimits(got, want, "Update's result after changing a limit")
	e.wantLimits(e.lookup(s, "a key whose limit changed"), want, "Lookup after changing a limit")

	for _, tt := range []struct {
		name  string
		limit apikey.Limit
	}{
		{"a count with neither Per nor Period nor Credits", apikey.Limit{Name: "bare", Count: 5}},
		{"a name with uppercase", apikey.Limit{Name: "Requests", Count: 5, Per: time.Second}},
		{"a period that is neither day nor month", apikey.Limit{Name: "weekly", Count: 5, Period: "week"}},
		{"a name twice", apikey.Limit{Name: "requests", Count: 5, Per: time.Second}},
	} {
		_, err := e.mgr.Update(e.ctx, k.ID, func(k *apikey.Key) error {
			k.Limits = append(slices.Clone(k.Limits), tt.limit)
			k.Name = "renamed"
			return nil
		})
		e.wantErr(err, apikey.ErrInvalid, "Update with "+tt.name)
		after := e.get(k.ID)
		e.wantLimits(after, want, "Get after a refused update with "+tt.name)
		if after.Name != "k" {
			e.t.Errorf("a refused update with %s renamed the key to %q", tt.name, after.Name)
		}
	}
	e.wantLimits(e.lookup(s, "a key after refused updates"), want, "Lookup after refused updates")

	got, err = e.mgr.Update(e.ctx, k.ID, func(k *apikey.Key) error {
		k.Limits = nil
		return nil
	})
	e.must(err, "Update clearing limits")
	for what, got := range map[string]*apikey.Key{
		"Update's result": got, "Get": e.get(k.ID), "Lookup": e.lookup(s, "a key whose limits were cleared"), "List": e.listed(k.ID),
	} {
		e.wantLimits(got, nil, what+" after clearing limits")
	}
	e.wantReason(s, 0, "the same secret after the limits changed")
}
