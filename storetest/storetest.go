// Package storetest is the contract suite for apikey stores. Every store
// that ships with apikey runs it, and a store of your own can too:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, keys apikey.KeyConfig) apikey.KeyStore {
//			return mystore.New(db, keys)
//		})
//	}
//
// A store with Lookup alone gets the lookup contract: an unknown digest is
// ErrNotFound, and (when the store has an Add(ctx, Digest, *Key) error
// method to put keys in) a key is found whatever its state. A store that is
// an apikey.Manager gets the management cases too, and an
// apikey.UsageStore or apikey.Rehasher those of its ability; each case a
// store cannot run is skipped, saying why. Every store gets the decorator
// check: wrapped in a decorator, it answers every request the
// same.
//
// The suite drives time through the KeyConfig's Clock (a *Clock), so it
// never sleeps, and it imports only the standard library and apikey.
package storetest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/apikey"
)

// Factory returns a new, empty store made with keys. The suite calls it
// once per case.
type Factory func(t *testing.T, keys apikey.KeyConfig) apikey.KeyStore

// Epoch is the suite's starting time, at microsecond precision so that
// stores backed by databases round-trip it exactly.
var Epoch = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// Scopes declares the scopes the suite uses.
var Scopes, _ = apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{
	"read": nil, "write": nil, "admin": {"read", "write"}, "stepsies:write": nil,
})

// The suite's keys are in a format of its own and digested under a pepper,
// so that a store, or a decorator, that assumed the default format or plain
// SHA-256 is caught.
var (
	suiteFormat, _ = apikey.NewFormat(apikey.FormatConfig{
		Name: "storetest", LivePrefix: "st_live_", TestPrefix: "st_test_",
		Alphabet: "0123456789abcdefghijklmnopqrstuvwxyz", Length: 32, Checksum: true,
	})
	suitePepper, _ = apikey.NewPepper("storetest-1", []byte("storetest pepper, 32 bytes long!"))
)

// adder is the import ability the suite uses to put keys into a store that
// is not a Manager.
type adder interface {
	Add(ctx context.Context, d apikey.Digest, k *apikey.Key) error
}

type env struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	keys  apikey.KeyConfig
	store apikey.KeyStore
	mgr   apikey.Manager // nil when the store is not one
	mw    *apikey.Middleware
}

// Run runs the whole contract suite against stores from factory.
func Run(t *testing.T, factory Factory) {
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"UnknownIsNotFound", testUnknownIsNotFound},
		{"ConcurrentLookups", testConcurrentLookups},
		{"FoundWhateverTheState", testFoundWhateverTheState},
		{"DecoratorAnswersTheSame", testDecoratorAnswersTheSame},
		{"CreateThenLookup", testCreateThenLookup},
		{"CreateRejectsBadInput", testCreateRejectsBadInput},
		{"UnknownIDs", testUnknownIDs},
		{"GetAndList", testGetAndList},
		{"ListStateFollowsKeyState", testListStateFollowsKeyState},
		{"RevokeIsImmediateAndIdempotent", testRevoke},
		{"RollKeepsOldKeyForGrace", testRollGrace},
		{"RollGraceCappedByExpiry", testRollCappedByExpiry},
		{"RollWithZeroGrace", testRollZeroGrace},
		{"ZeroGraceRollIgnoresTheClock", testZeroGraceIgnoresTheClock},
		{"AddRefusesBadRecords", testAddRefusesBadRecords},
		{"RevokeDuringGrace", testRevokeDuringGrace},
		{"ResultsAreCopies", testResultsAreCopies},
		{"RollRefusals", testRollRefusals},
		{"Expiry", testExpiry},
		{"ConcurrentCreate", testConcurrentCreate},
		{"RecordUsage", testRecordUsage},
		{"Rehash", testRehash},
		{"UpdateInPlace", testUpdateInPlace},
		{"UpdateRefusals", testUpdateRefusals},
		{"DisableAndEnable", testDisableAndEnable},
		{"ListPages", testListPages},
		{"LimitsRoundTrip", testLimitsRoundTrip},
		{"RollKeepsLimitsAndLineage", testRollKeepsLimitsAndLineage},
		{"UpdateLimits", testUpdateLimits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(setup(t, factory)) })
	}
}

func setup(t *testing.T, factory Factory) *env {
	t.Helper()
	clock := NewClock(Epoch)
	keys := apikey.KeyConfig{
		Formats: []*apikey.Format{suiteFormat}, Peppers: []apikey.Pepper{suitePepper},
		Scopes: Scopes, Clock: clock.Now,
	}
	s := factory(t, keys)
	if s == nil {
		t.Fatal("storetest: the factory returned a nil store")
	}
	mw, err := apikey.New(apikey.Config{Keys: keys, Store: s, MethodPolicy: apikey.ReadWritePolicy()})
	if err != nil {
		t.Fatalf("storetest: apikey.New: %v", err)
	}
	e := &env{t: t, ctx: context.Background(), clock: clock, keys: keys, store: s, mw: mw}
	e.mgr, _ = s.(apikey.Manager)
	return e
}

// needManager skips a case that manages keys when the store cannot.
func (e *env) needManager() {
	e.t.Helper()
	if e.mgr == nil {
		e.t.Skip("storetest: the store is not an apikey.Manager: skipping the management cases (Create, Get, List, Revoke, Roll)")
	}
}

func (e *env) create(spec apikey.KeySpec) (*apikey.Key, apikey.Secret) {
	e.t.Helper()
	k, s, err := e.mgr.Create(e.ctx, spec)
	if err != nil {
		e.t.Fatalf("Create(%q): %v", spec.Name, err)
	}
	return k, s
}

// verify authenticates a secret as the middleware would and returns the
// reason it fails (0 when accepted).
func (e *env) verify(s apikey.Secret) apikey.Reason {
	e.t.Helper()
	_, err := e.mw.Verify(e.ctx, s.Reveal())
	if err == nil {
		return 0
	}
	var ae apikey.AuthError
	if !errors.As(err, &ae) {
		e.t.Fatalf("Verify returned %v, not an apikey.AuthError", err)
	}
	return ae.Reason
}

func (e *env) wantReason(s apikey.Secret, want apikey.Reason, why string) {
	e.t.Helper()
	if got := e.verify(s); got != want {
		e.t.Errorf("%s: verify = %q, want %q", why, got, want)
	}
}

func (e *env) get(id string) *apikey.Key {
	e.t.Helper()
	k, err := e.mgr.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Get(%s): %v", id, err)
	}
	return k
}

func (e *env) must(err error, what string) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

func (e *env) wantErr(err, target error, what string) {
	e.t.Helper()
	if !errors.Is(err, target) {
		e.t.Errorf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

func (e *env) wantTime(got, want time.Time, what string) {
	e.t.Helper()
	if !got.Equal(want) {
		e.t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// put files a key in the store through its Manager or its Add; it returns
// the secret, or false when the store offers neither.
func (e *env) put(k *apikey.Key) (apikey.Secret, bool) {
	e.t.Helper()
	if e.mgr != nil {
		nk, s := e.create(apikey.KeySpec{Name: k.Name, Scopes: k.Scopes, ExpiresAt: k.ExpiresAt})
		if !k.RevokedAt.IsZero() {
			e.must(e.mgr.Revoke(e.ctx, nk.ID), "Revoke")
		}
		return s, true
	}
	a, ok := e.store.(adder)
	if !ok {
		return apikey.Secret{}, false
	}
	is, err := e.keys.NewKey(apikey.KeySpec{Name: k.Name, Scopes: k.Scopes, ExpiresAt: k.ExpiresAt})
	e.must(err, "KeyConfig.NewKey")
	is.Key.RevokedAt = k.RevokedAt
	e.must(a.Add(e.ctx, is.Digest, is.Key), "Add")
	return is.Secret, true
}

func (e *env) needPut() {
	e.t.Helper()
	if _, ok := e.store.(adder); e.mgr == nil && !ok {
		e.t.Skip("storetest: the store is neither an apikey.Manager nor has an Add(ctx, Digest, *Key) error method: the suite cannot put keys in it, so only the not-found contract was checked")
	}
}

func testUnknownIsNotFound(e *env) {
	k, err := e.store.Lookup(e.ctx, e.keys.Digest("st_live_never_issued"))
	e.wantErr(err, apikey.ErrNotFound, "Lookup of an unknown digest")
	if k != nil {
		e.t.Errorf("Lookup of an unknown digest returned a key")
	}
}

func testConcurrentLookups(e *env) {
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := e.store.Lookup(e.ctx, e.keys.Digest(fmt.Sprint("unknown", w, i))); !errors.Is(err, apikey.ErrNotFound) {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Errorf("concurrent Lookup of an unknown digest: %v", err)
	}
}

// A store returns a key whatever its state: the middleware decides.
func testFoundWhateverTheState(e *env) {
	e.needPut()
	active, _ := e.put(&apikey.Key{Name: "active"})
	revoked, _ := e.put(&apikey.Key{Name: "revoked", RevokedAt: Epoch})
	expiring, _ := e.put(&apikey.Key{Name: "expiring", ExpiresAt: Epoch.Add(time.Minute)})
	e.clock.Advance(time.Minute)
	for _, c := range []struct {
		s    apikey.Secret
		name string
		want apikey.Reason
	}{{active, "active", 0}, {revoked, "revoked", apikey.ReasonRevoked}, {expiring, "expiring", apikey.ReasonExpired}} {
		k, err := e.store.Lookup(e.ctx, e.keys.Digest(c.s.Reveal()))
		if err != nil || k == nil || k.Name != c.name {
			e.t.Errorf("Lookup of the %s key: %v, %v", c.name, k, err)
			continue
		}
		e.wantReason(c.s, c.want, c.name+" key")
	}
}

// Wrapped in a plain decorator, the store answers every request the same.
func testDecoratorAnswersTheSame(e *env) {
	e.needPut()
	valid, _ := e.put(&apikey.Key{Name: "valid", Scopes: []apikey.Scope{"read", "write"}})
	admin, _ := e.put(&apikey.Key{Name: "admin", Scopes: []apikey.Scope{"admin"}})
	readOnly, _ := e.put(&apikey.Key{Name: "read only", Scopes: []apikey.Scope{"read"}})
	revoked, _ := e.put(&apikey.Key{Name: "revoked", Scopes: []apikey.Scope{"read"}, RevokedAt: Epoch})
	unknown, err := e.keys.NewKey(apikey.KeySpec{Name: "never stored"})
	e.must(err, "NewKey")
	var calls int
	wrapped := lookupFunc(func(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
		calls++
		return e.store.Lookup(ctx, d)
	})
	status := func(store apikey.KeyStore, method string, s apikey.Secret) int {
		mw, err := apikey.New(apikey.Config{Keys: e.keys, Store: store, MethodPolicy: apikey.ReadWritePolicy()})
		e.must(err, "apikey.New")
		h := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		r := httptest.NewRequest(method, "/", nil)
		r.Header.Set("Authorization", "Bearer "+s.Reveal())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, c := range []struct {
		name, method string
		s            apikey.Secret
		want         int
	}{
		{"valid", "GET", valid, 200},
		{"admin, which implies write", "POST", admin, 200},
		{"unknown", "GET", unknown.Secret, 401},
		{"revoked", "GET", revoked, 401},
		{"wrong scope", "POST", readOnly, 403},
	} {
		bare, decorated := status(e.store, c.method, c.s), status(wrapped, c.method, c.s)
		if bare != c.want || decorated != bare {
			e.t.Errorf("%s key: bare store %d, decorated %d, want %d for both", c.name, bare, decorated, c.want)
		}
	}
	if calls != 5 {
		e.t.Errorf("the decorator saw %d lookups, want 5", calls)
	}
}

func testCreateThenLookup(e *env) {
	e.needManager()
	t := e.t
	exp := Epoch.Add(48 * time.Hour)
	k, s := e.create(apikey.KeySpec{
		Name: "Production Backend", Environment: apikey.EnvTest,
		Scopes: []apikey.Scope{"read", "write"}, Owner: "ops@example.com",
		Metadata: map[string]string{"team": "core"}, ExpiresAt: exp,
	})
	plain := s.Reveal()
	want := &apikey.Key{
		ID: k.ID, Name: "Production Backend", Environment: apikey.EnvTest,
		Scopes: []apikey.Scope{"read", "write"}, Owner: "ops@example.com",
		Metadata: map[string]string{"team": "core"}, Hint: "st_test_…" + plain[len(plain)-4:],
		PepperID:  "storetest-1",
		CreatedAt: Epoch, ExpiresAt: exp,
	}
	if len(k.ID) != 30 || k.ID[:4] != "key_" {
		t.Errorf("ID %q is not key_ and 26 characters", k.ID)
	}
	if !reflect.DeepEqual(k, want) {
		t.Errorf("Create returned\n%+v\nwant\n%+v", k, want)
	}
	env, err := suiteFormat.Parse(plain)
	if err != nil || env != apikey.EnvTest {
		t.Errorf("the secret parses as %v, %v; want a test key", env, err)
	}
	got, err := e.store.Lookup(e.ctx, e.keys.Digest(plain))
	e.must(err, "Lookup of a created key")
	if got.ID != k.ID {
		t.Errorf("Lookup found %s, want %s", got.ID, k.ID)
	}
	e.wantReason(s, 0, "a created key")
	// The store keeps the digest, not the secret: the digest itself is not
	// a credential.
	d := e.keys.Digest(plain)
	_, err = e.store.Lookup(e.ctx, e.keys.Digest(hex.EncodeToString(d[:])))
	e.wantErr(err, apikey.ErrNotFound, "Lookup by the digest of the digest")
}

func testCreateRejectsBadInput(e *env) {
	e.needManager()
	for _, tt := range []struct {
		name string
		spec apikey.KeySpec
	}{
		{"empty name", apikey.KeySpec{Scopes: []apikey.Scope{"read"}}},
		{"undeclared scope", apikey.KeySpec{Name: "x", Scopes: []apikey.Scope{"superuser"}}},
		{"malformed scope", apikey.KeySpec{Name: "x", Scopes: []apikey.Scope{"Read Write"}}},
		{"expiry in the past", apikey.KeySpec{Name: "x", ExpiresAt: Epoch.Add(-time.Second)}},
		{"bad environment", apikey.KeySpec{Name: "x", Environment: 7}},
		{"invalid limit", apikey.KeySpec{Name: "x", Limits: []apikey.Limit{{Name: "x", Count: 5}}}},
	} {
		k, s, err := e.mgr.Create(e.ctx, tt.spec)
		e.wantErr(err, apikey.ErrInvalid, "Create with "+tt.name)
		if k != nil || s.Reveal() != "" {
			e.t.Errorf("Create with %s returned a key", tt.name)
		}
	}
	list, err := e.mgr.List(e.ctx, apikey.Filter{})
	e.must(err, "List")
	if len(list) != 0 {
		e.t.Errorf("failed creates stored %d keys", len(list))
	}
}

func testUnknownIDs(e *env) {
	e.needManager()
	_, err := e.mgr.Get(e.ctx, "key_missing")
	e.wantErr(err, apikey.ErrNotFound, "Get")
	e.wantErr(e.mgr.Revoke(e.ctx, "key_missing"), apikey.ErrNotFound, "Revoke")
	_, _, err = e.mgr.Roll(e.ctx, "key_missing", 24*time.Hour)
	e.wantErr(err, apikey.ErrNotFound, "Roll")
	_, err = e.mgr.Update(e.ctx, "key_missing", func(*apikey.Key) error { return nil })
	e.wantErr(err, apikey.ErrNotFound, "Update")
	_, err = e.mgr.List(e.ctx, apikey.Filter{After: "key_missing"})
	e.wantErr(err, apikey.ErrNotFound, "List after an unknown key")
}

func (e *env) ids(f apikey.Filter) []string {
	e.t.Helper()
	list, err := e.mgr.List(e.ctx, f)
	e.must(err, "List")
	out := []string{}
	for _, k := range list {
		out = append(out, k.ID)
	}
	return out
}

func (e *env) wantIDs(f apikey.Filter, want ...string) {
	e.t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := e.ids(f); !reflect.DeepEqual(got, want) {
		e.t.Errorf("List(%+v) = %v, want %v", f, got, want)
	}
}

func testGetAndList(e *env) {
	e.needManager()
	a, _ := e.create(apikey.KeySpec{Name: "a", Owner: "o1", Scopes: []apikey.Scope{"read"}})
	e.clock.Advance(time.Second)
	b, _ := e.create(apikey.KeySpec{Name: "b", Owner: "o2", Environment: apikey.EnvTest})
	e.clock.Advance(time.Second)
	c, _ := e.create(apikey.KeySpec{Name: "c", Owner: "o1", ExpiresAt: Epoch.Add(time.Hour)})
	e.must(e.mgr.Revoke(e.ctx, a.ID), "Revoke")

	if got := e.get(b.ID); got.Name != "b" {
		e.t.Errorf("Get(b) = %q", got.Name)
	}
	e.wantIDs(apikey.Filter{}, a.ID, b.ID, c.ID)
	e.wantIDs(apikey.Filter{Environment: apikey.EnvTest}, b.ID)
	e.wantIDs(apikey.Filter{Owner: "o1"}, a.ID, c.ID)
	e.wantIDs(apikey.Filter{State: apikey.StateRevoked}, a.ID)
	e.wantIDs(apikey.Filter{State: apikey.StateActive}, b.ID, c.ID)
	e.clock.Advance(2 * time.Hour)
	e.wantIDs(apikey.Filter{State: apikey.StateExpired}, c.ID)
	e.wantIDs(apikey.Filter{Owner: "o1", State: apikey.StateExpired}, c.ID)
}

// List's state filter agrees with Key.State, the one rule, for keys in
// every state: this pins a store's query language (SQL) to it.
func testListStateFollowsKeyState(e *env) {
	e.needManager()
	_, _ = e.create(apikey.KeySpec{Name: "active"})
	revoked, _ := e.create(apikey.KeySpec{Name: "revoked", ExpiresAt: Epoch.Add(time.Minute)})
	e.must(e.mgr.Revoke(e.ctx, revoked.ID), "Revoke")
	_, _ = e.create(apikey.KeySpec{Name: "expired", ExpiresAt: Epoch.Add(time.Minute)})
	_, _ = e.create(apikey.KeySpec{Name: "expires later", ExpiresAt: Epoch.Add(time.Hour)})
	rolled, _ := e.create(apikey.KeySpec{Name: "rolled"})
	_, _, err := e.mgr.Roll(e.ctx, rolled.ID, time.Minute)
	e.must(err, "Roll")
	inGrace, _ := e.create(apikey.KeySpec{Name: "in grace"})
	_, _, err = e.mgr.Roll(e.ctx, inGrace.ID, time.Hour)
	e.must(err, "Roll")
	rolledRevoked, _ := e.create(apikey.KeySpec{Name: "rolled then revoked"})
	_, _, err = e.mgr.Roll(e.ctx, rolledRevoked.ID, time.Minute)
	e.must(err, "Roll")
	e.must(e.mgr.Revoke(e.ctx, rolledRevoked.ID), "Revoke")

	for _, at := range []time.Duration{0, time.Minute, 2 * time.Hour} {
		e.clock.Advance(at)
		now := e.clock.Now()
		all, err := e.mgr.List(e.ctx, apikey.Filter{})
		e.must(err, "List")
		for _, st := range []apikey.State{apikey.StateActive, apikey.StateRevoked, apikey.StateExpired, apikey.StateRolled} {
			var want []string
			for _, k := range all {
				if k.State(now) == st {
					want = append(want, k.ID)
				}
			}
			e.wantIDs(apikey.Filter{State: st}, want...)
		}
	}
}

func testRevoke(e *env) {
	e.needManager()
	k, s := e.create(apikey.KeySpec{Name: "r"})
	_, other := e.create(apikey.KeySpec{Name: "other"})
	e.wantReason(s, 0, "before revocation")

	e.clock.Advance(time.Minute)
	e.must(e.mgr.Revoke(e.ctx, k.ID), "Revoke")
	e.wantReason(s, apikey.ReasonRevoked, "rejected at once")
	e.wantReason(other, 0, "other keys unaffected")
	first := e.get(k.ID).RevokedAt
	e.wantTime(first, Epoch.Add(time.Minute), "RevokedAt")

	e.clock.Advance(time.Minute)
	e.must(e.mgr.Revoke(e.ctx, k.ID), "revoking twice is not an error")
	e.wantTime(e.get(k.ID).RevokedAt, first, "RevokedAt after a second Revoke")
}

func testRollGrace(e *env) {
	e.needManager()
	t := e.t
	old, oldSecret := e.create(apikey.KeySpec{
		Name: "rolling", Scopes: []apikey.Scope{"read", "stepsies:write"}, Owner: "o",
		Metadata: map[string]string{"k": "v"}, Environment: apikey.EnvTest,
	})
	e.clock.Advance(time.Hour)
	nk, newSecret, err := e.mgr.Roll(e.ctx, old.ID, 24*time.Hour)
	e.must(err, "Roll")
	if nk.ID == old.ID || newSecret.Reveal() == oldSecret.Reveal() {
		t.Errorf("the successor has the old ID or secret")
	}
	if nk.RolledFrom != old.ID || nk.Name != old.Name || !reflect.DeepEqual(nk.Scopes, old.Scopes) ||
		nk.Owner != old.Owner || !reflect.DeepEqual(nk.Metadata, old.Metadata) || nk.Environment != old.Environment {
		t.Errorf("the successor does not inherit everything: %+v from %+v", nk, old)
	}
	if !nk.ExpiresAt.IsZero() {
		t.Errorf("the successor expires at %v; the old key had no expiry", nk.ExpiresAt)
	}
	got := e.get(old.ID)
	if got.RolledTo != nk.ID {
		t.Errorf("old RolledTo = %q, want %q", got.RolledTo, nk.ID)
	}
	e.wantTime(got.ExpiresAt, Epoch.Add(25*time.Hour), "the old key's retirement")

	e.wantReason(oldSecret, 0, "old key during the grace period")
	e.wantReason(newSecret, 0, "new key")
	e.clock.Advance(24*time.Hour - time.Second)
	e.wantReason(oldSecret, 0, "old key a second before the end of grace")
	e.clock.Advance(time.Second)
	e.wantReason(oldSecret, apikey.ReasonRolled, "old key after the grace period")
	e.wantReason(newSecret, 0, "new key after the grace period")
}

func testRollCappedByExpiry(e *env) {
	e.needManager()
	old, oldSecret := e.create(apikey.KeySpec{Name: "short", ExpiresAt: Epoch.Add(2 * time.Hour)})
	nk, newSecret, err := e.mgr.Roll(e.ctx, old.ID, 24*time.Hour)
	e.must(err, "Roll")
	e.wantTime(nk.ExpiresAt, Epoch.Add(2*time.Hour), "the successor's inherited expiry")
	e.wantTime(e.get(old.ID).ExpiresAt, Epoch.Add(2*time.Hour), "the old key's retirement, capped by its expiry")
	e.clock.Advance(2 * time.Hour)
	if e.verify(oldSecret) == 0 {
		e.t.Errorf("old key accepted past its expiry")
	}
	e.wantReason(newSecret, apikey.ReasonExpired, "the successor past the inherited expiry")
}

func testRollZeroGrace(e *env) {
	e.needManager()
	old, oldSecret := e.create(apikey.KeySpec{Name: "now"})
	_, newSecret, err := e.mgr.Roll(e.ctx, old.ID, 0)
	e.must(err, "Roll")
	e.wantReason(oldSecret, apikey.ReasonRolled, "grace 0 retires at once")
	e.wantReason(newSecret, 0, "the successor")
}

// A key rolled with zero grace stays retired when the clock steps back, as
// after an NTP correction or a restore; so does a key in its grace period
// when the clock goes back to before the roll.
func testZeroGraceIgnoresTheClock(e *env) {
	e.needManager()
	old, oldSecret := e.create(apikey.KeySpec{Name: "retired at once"})
	graced, gracedSecret := e.create(apikey.KeySpec{Name: "in grace"})
	e.clock.Advance(time.Minute)
	_, newSecret, err := e.mgr.Roll(e.ctx, old.ID, 0)
	e.must(err, "Roll")
	_, _, err = e.mgr.Roll(e.ctx, graced.ID, time.Hour)
	e.must(err, "Roll with grace")
	e.wantReason(gracedSecret, 0, "a key in its grace period")
	e.wantIDs(apikey.Filter{State: apikey.StateRolled}, old.ID)

	e.clock.Advance(-3 * time.Second)
	e.wantReason(oldSecret, apikey.ReasonRolled, "old key with the clock 3 s back")
	e.wantReason(gracedSecret, apikey.ReasonRolled, "a key in grace with the clock back before its roll")
	e.wantReason(newSecret, 0, "the successor with the clock 3 s back")
	e.wantIDs(apikey.Filter{State: apikey.StateRolled}, old.ID, graced.ID)
	for _, id := range []string{old.ID, graced.ID} {
		if got := e.get(id); !got.RolledAt.Equal(Epoch.Add(time.Minute)) {
			e.t.Errorf("key %s: RolledAt = %v, want the roll's time", id, got.RolledAt)
		}
	}
}

// Add, where a store has it, refuses what no store may file: every store
// follows the same rule, and accepts IDs with ':' or '/' (imported keys).
func testAddRefusesBadRecords(e *env) {
	a, ok := e.store.(adder)
	if !ok {
		e.t.Skip("storetest: the store has no Add(ctx, Digest, *Key) error method")
	}
	good := func(id string) *apikey.Key {
		return &apikey.Key{ID: id, Name: "imported", Environment: apikey.EnvLive, CreatedAt: Epoch}
	}
	for _, tt := range []struct {
		name   string
		digest apikey.Digest
		key    *apikey.Key
	}{
		{"no key", e.keys.Digest("a"), nil},
		{"empty id", e.keys.Digest("a"), good("")},
		{"id with a space", e.keys.Digest("a"), good("key 1")},
		{"id with a newline", e.keys.Digest("a"), good("key\n1")},
		{"id not ASCII", e.keys.Digest("a"), good("kéy")},
		{"id over 128 bytes", e.keys.Digest("a"), good(strings.Repeat("k", 129))},
		{"zero digest", apikey.Digest{}, good("key_zero")},
		{"no environment", e.keys.Digest("a"), &apikey.Key{ID: "key_noenv", Name: "x", CreatedAt: Epoch}},
		{"malformed scope", e.keys.Digest("a"), &apikey.Key{ID: "key_scope", Name: "x", Environment: apikey.EnvLive, Scopes: []apikey.Scope{"Read Write"}, CreatedAt: Epoch}},
	} {
		e.wantErr(a.Add(e.ctx, tt.digest, tt.key), apikey.ErrInvalid, "Add with "+tt.name)
	}
	for _, id := range []string{"legacy:42", "acme/42:7", "a"} {
		e.must(a.Add(e.ctx, e.keys.Digest(id), good(id)), "Add "+id)
		k, err := e.store.Lookup(e.ctx, e.keys.Digest(id))
		e.must(err, "Lookup of "+id)
		if k.ID != id {
			e.t.Errorf("Lookup found %q, want %q", k.ID, id)
		}
	}
}

// A key rolled with a grace period and then revoked is rejected at once,
// grace or not.
func testRevokeDuringGrace(e *env) {
	e.needManager()
	old, oldSecret := e.create(apikey.KeySpec{Name: "rolled then revoked"})
	_, newSecret, err := e.mgr.Roll(e.ctx, old.ID, time.Hour)
	e.must(err, "Roll")
	e.wantReason(oldSecret, 0, "in grace")
	e.must(e.mgr.Revoke(e.ctx, old.ID), "Revoke")
	e.wantReason(oldSecret, apikey.ReasonRevoked, "revoked in grace")
	e.wantReason(newSecret, 0, "the successor is not revoked with it")
}

// Keys returned by Create, Get and List belong to the caller: changing
// them changes nothing in the store.
func testResultsAreCopies(e *env) {
	e.needManager()
	k, _ := e.create(apikey.KeySpec{Name: "original", Scopes: []apikey.Scope{"read"}, Metadata: map[string]string{"a": "b"}})
	k.Name, k.Scopes[0], k.Metadata["a"] = "changed", "admin", "z"
	got := e.get(k.ID)
	got.Scopes[0], got.Metadata["a"] = "write", "y"
	list, err := e.mgr.List(e.ctx, apikey.Filter{})
	e.must(err, "List")
	if len(list) != 1 {
		e.t.Fatalf("List returned %d keys, want 1", len(list))
	}
	list[0].Name = "changed again"
	again := e.get(k.ID)
	if again.Name != "original" || !reflect.DeepEqual(again.Scopes, []apikey.Scope{"read"}) ||
		!reflect.DeepEqual(again.Metadata, map[string]string{"a": "b"}) {
		e.t.Errorf("a caller's change reached the store: %+v", again)
	}
}

func testRollRefusals(e *env) {
	e.needManager()
	revoked, _ := e.create(apikey.KeySpec{Name: "revoked"})
	e.must(e.mgr.Revoke(e.ctx, revoked.ID), "Revoke")
	_, _, err := e.mgr.Roll(e.ctx, revoked.ID, 24*time.Hour)
	e.wantErr(err, apikey.ErrRevoked, "Roll of a revoked key")

	rolled, _ := e.create(apikey.KeySpec{Name: "rolled"})
	_, _, err = e.mgr.Roll(e.ctx, rolled.ID, 24*time.Hour)
	e.must(err, "Roll")
	_, _, err = e.mgr.Roll(e.ctx, rolled.ID, 24*time.Hour)
	e.wantErr(err, apikey.ErrAlreadyRolled, "second Roll")

	retired, _ := e.create(apikey.KeySpec{Name: "retired at once"})
	_, _, err = e.mgr.Roll(e.ctx, retired.ID, 0)
	e.must(err, "Roll with zero grace")
	_, _, err = e.mgr.Roll(e.ctx, retired.ID, 24*time.Hour)
	e.wantErr(err, apikey.ErrAlreadyRolled, "Roll of a key already rolled with zero grace")

	expiring, _ := e.create(apikey.KeySpec{Name: "expiring", ExpiresAt: Epoch.Add(time.Minute)})
	_, _, err = e.mgr.Roll(e.ctx, expiring.ID, -time.Second)
	e.wantErr(err, apikey.ErrInvalid, "Roll with a negative grace")
	e.clock.Advance(time.Minute)
	_, _, err = e.mgr.Roll(e.ctx, expiring.ID, 24*time.Hour)
	e.wantErr(err, apikey.ErrExpired, "Roll of an expired key")
}

func testExpiry(e *env) {
	e.needManager()
	_, s := e.create(apikey.KeySpec{Name: "temp", ExpiresAt: Epoch.Add(time.Hour)})
	e.wantReason(s, 0, "before expiry")
	e.clock.Advance(time.Hour - time.Microsecond)
	e.wantReason(s, 0, "a microsecond before expiry")
	e.clock.Advance(time.Microsecond)
	e.wantReason(s, apikey.ReasonExpired, "at expiry")
}

func testConcurrentCreate(e *env) {
	e.needManager()
	const workers, each = 8, 10
	var (
		mu      sync.Mutex
		secrets = map[string]apikey.Secret{}
		wg      sync.WaitGroup
		errs    = make(chan error, workers*each)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				k, s, err := e.mgr.Create(e.ctx, apikey.KeySpec{Name: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				secrets[k.ID] = s
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatalf("concurrent Create: %v", err)
	}
	if len(secrets) != workers*each {
		e.t.Fatalf("%d distinct keys, want %d", len(secrets), workers*each)
	}
	for id, s := range secrets {
		k, err := e.mw.Verify(e.ctx, s.Reveal())
		if err != nil || k.ID != id {
			e.t.Errorf("key %s: Verify = %v, %v", id, k, err)
		}
	}
}

func testRecordUsage(e *env) {
	us, ok := e.store.(apikey.UsageStore)
	if !ok {
		e.t.Skip("storetest: the store is not an apikey.UsageStore")
	}
	e.needManager()
	live, _ := e.create(apikey.KeySpec{Name: "live"})
	test, _ := e.create(apikey.KeySpec{Name: "test", Environment: apikey.EnvTest})
	t1, t2 := Epoch.Add(time.Minute), Epoch.Add(2*time.Minute)
	e.must(us.RecordUsage(e.ctx, "", []apikey.Usage{
		{KeyID: live.ID, Environment: apikey.EnvLive, Count: 3, LastUsed: t2},
		{KeyID: test.ID, Environment: apikey.EnvTest, Count: 5, LastUsed: t1},
		{KeyID: "key_unknown", Environment: apikey.EnvLive, Count: 1, LastUsed: t1},
	}), "RecordUsage")
	// An older batch adds its count but never moves last-used back.
	e.must(us.RecordUsage(e.ctx, "", []apikey.Usage{
		{KeyID: live.ID, Environment: apikey.EnvLive, Count: 2, LastUsed: t1},
	}), "RecordUsage of an older batch")
	got := e.get(live.ID)
	if got.Requests != 5 {
		e.t.Errorf("live key: %d requests, want 5", got.Requests)
	}
	e.wantTime(got.LastUsedAt, t2, "live key's last use")
	got = e.get(test.ID)
	if got.Requests != 5 {
		e.t.Errorf("test key: %d requests, want 5", got.Requests)
	}
	e.wantTime(got.LastUsedAt, t1, "test key's last use")
	e.must(us.RecordUsage(e.ctx, "", nil), "an empty batch")
}

func testRehash(e *env) {
	rh, ok := e.store.(apikey.Rehasher)
	if !ok {
		e.t.Skip("storetest: the store is not an apikey.Rehasher")
	}
	e.needManager()
	k, s := e.create(apikey.KeySpec{Name: "pepper"})
	p, err := apikey.NewPepper("p2", []byte("0123456789abcdef0123456789abcdef"))
	e.must(err, "NewPepper")
	peppered := e.keys
	peppered.Peppers = []apikey.Pepper{p}
	nd := peppered.Digest(s.Reveal())
	e.must(rh.Rehash(e.ctx, k.ID, nd, "p2"), "Rehash")
	got, err := e.store.Lookup(e.ctx, nd)
	e.must(err, "Lookup under the new digest")
	if got.ID != k.ID || got.PepperID != "p2" {
		e.t.Errorf("Lookup under the new digest found %s with pepper %q", got.ID, got.PepperID)
	}
	_, err = e.store.Lookup(e.ctx, e.keys.Digest(s.Reveal()))
	e.wantErr(err, apikey.ErrNotFound, "Lookup under the old digest")
	e.wantErr(rh.Rehash(e.ctx, "key_missing", nd, "p2"), apikey.ErrNotFound, "Rehash of an unknown key")
}

// lookupFunc adapts a function to apikey.KeyStore: the decorator of
// DecoratorAnswersTheSame.
type lookupFunc func(ctx context.Context, d apikey.Digest) (*apikey.Key, error)

func (f lookupFunc) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	return f(ctx, d)
}
