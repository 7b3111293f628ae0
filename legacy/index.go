package legacy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keygate/apikey"
)

// minLookupPrefix is the shortest lookup prefix of a record found by
// prefix.
const minLookupPrefix = 4

// entry is a loaded record: what its key becomes, and how to verify it.
type entry struct {
	key    *apikey.Key
	scheme string
	prefix string // Record.Prefix; the credential must start with it
	lookup string // the slow index's key, "" for a fast hash
	hash   secretHash
	fast   string // the fast index's key, "" for a slow hash
}

func (e *entry) slow() bool { return e.fast == "" }

// index holds the records not yet migrated. A credential matches at most
// one: by the digest of a fast hash, or by the one lookup prefix it starts
// with.
type index struct {
	fast    map[string]*entry // by digestKind + raw digest
	kinds   []digestKind      // the digest kinds present in fast
	slow    map[string]*entry // by lookup prefix
	lengths []int             // the lengths of the lookup prefixes, longest first
	byID    map[string]*entry
	left    map[string]int // records left per scheme
}

// buildIndex checks records and indexes those that can still work. keys,
// when not nil, also checks the scopes are declared; name says which
// record an error is about.
func buildIndex(records []Record, keys *apikey.KeyConfig, name func(i int) string) (*index, error) {
	ix := &index{
		fast: make(map[string]*entry),
		slow: make(map[string]*entry),
		byID: make(map[string]*entry),
		left: make(map[string]int),
	}
	ids := make(map[string]int, len(records))
	lookups := make([]string, 0, len(records))
	owner := make(map[string]int, len(records)) // lookup prefix or fast key → record
	for i := range records {
		rec := &records[i]
		e, err := loadRecord(rec, keys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name(i), err)
		}
		if j, dup := ids[rec.Key.ID]; dup {
			return nil, fmt.Errorf("%s: %w: key id %s is also on %s", name(i), apikey.ErrInvalid, rec.Key.ID, name(j))
		}
		ids[rec.Key.ID] = i
		ix.left[rec.Scheme] += 0 // a scheme whose records are all revoked shows 0
		if !rec.Key.RevokedAt.IsZero() {
			continue
		}
		k := e.lookup
		if !e.slow() {
			k = e.fast
		}
		if j, dup := owner[k]; dup {
			what := "lookup prefix"
			if !e.slow() {
				what = "key (same hash)"
			}
			return nil, fmt.Errorf("%s: %w: key %s has the same %s as %s", name(i), apikey.ErrInvalid, rec.Key.ID, what, name(j))
		}
		owner[k] = i
		if e.slow() {
			ix.slow[k] = e
			lookups = append(lookups, k)
		} else {
			ix.fast[k] = e
			if kind := digestKind(k[0]); !slices.Contains(ix.kinds, kind) {
				ix.kinds = append(ix.kinds, kind)
			}
		}
		ix.byID[rec.Key.ID] = e
		ix.left[rec.Scheme]++
	}
	// A lookup prefix that begins another sorts right before one that it
	// begins: comparing neighbours finds every nesting.
	slices.Sort(lookups)
	for i := 1; i < len(lookups); i++ {
		if strings.HasPrefix(lookups[i], lookups[i-1]) {
			a, b := owner[lookups[i-1]], owner[lookups[i]]
			return nil, fmt.Errorf("%s: %w: the lookup prefix of key %s begins that of key %s (%s): a credential could match both",
				name(a), apikey.ErrInvalid, records[a].Key.ID, records[b].Key.ID, name(b))
		}
	}
	for _, l := range lookups {
		if !slices.Contains(ix.lengths, len(l)) {
			ix.lengths = append(ix.lengths, len(l))
		}
	}
	slices.SortFunc(ix.lengths, func(a, b int) int { return b - a })
	return ix, nil
}

// loadRecord checks one record and makes its entry.
func loadRecord(rec *Record, keys *apikey.KeyConfig) (*entry, error) {
	h, err := parseHash(rec.Scheme, rec.Hash)
	if err != nil {
		return nil, err
	}
	if err := checkKey(&rec.Key, keys); err != nil {
		return nil, err
	}
	k := rec.Key.Clone()
	if k.Name == "" {
		k.Name = k.ID
	}
	if k.Environment == 0 {
		k.Environment = apikey.EnvLive
	}
	e := &entry{key: k, scheme: rec.Scheme, prefix: rec.Prefix, hash: h}
	if f, ok := h.(fastHash); ok {
		e.fast = f.index()
	} else {
		e.lookup = rec.Prefix
	}
	switch {
	case len(rec.Prefix) > maxCredential:
		return nil, fmt.Errorf("%w: key %s: prefix is longer than a credential can be", apikey.ErrInvalid, rec.Key.ID)
	case rec.Scheme == SchemeDRF && (rec.Prefix == "" || strings.Contains(rec.Prefix, ".")):
		return nil, fmt.Errorf("%w: key %s: a drf-api-key record needs its prefix, the part of the key before the dot", apikey.ErrInvalid, rec.Key.ID)
	case rec.Scheme == SchemeDRF:
		e.prefix = rec.Prefix + "." // djangorestframework-api-key keys are prefix.secret
		if e.slow() {
			e.lookup = e.prefix
		}
	case rec.Scheme == SchemePlaintext && !strings.HasPrefix(rec.Hash, rec.Prefix):
		return nil, fmt.Errorf("%w: key %s: the plaintext key does not start with its prefix", apikey.ErrInvalid, rec.Key.ID)
	}
	if e.slow() && len(e.lookup) < minLookupPrefix {
		return nil, fmt.Errorf("%w: key %s: a %s record needs a prefix of at least %d bytes, the beginning of the key the old system showed, to be found without hashing",
			apikey.ErrInvalid, rec.Key.ID, rec.Scheme, minLookupPrefix)
	}
	return e, nil
}

// checkKey checks what the key becomes: what a store's Add refuses, and,
// with keys, scopes the KeyConfig does not declare.
func checkKey(k *apikey.Key, keys *apikey.KeyConfig) error {
	if !validID(k.ID) {
		return fmt.Errorf("%w: key id %q must be 1 to 128 visible ASCII characters", apikey.ErrInvalid, truncate(k.ID))
	}
	switch {
	case k.Environment > apikey.EnvTest:
		return fmt.Errorf("%w: key %s: environment %d is neither live nor test", apikey.ErrInvalid, k.ID, k.Environment)
	case k.RolledTo != "" || k.RolledFrom != "" || !k.RolledAt.IsZero():
		return fmt.Errorf("%w: key %s: a legacy key cannot be part of a roll (rolled_to, rolled_from, rolled_at)", apikey.ErrInvalid, k.ID)
	case len(k.Name) > 200:
		return fmt.Errorf("%w: key %s: name is longer than 200 bytes", apikey.ErrInvalid, k.ID)
	}
	var declared []apikey.Scope
	if keys != nil {
		declared = keys.Scopes.Scopes()
	}
	for _, s := range k.Scopes {
		if !validScope(s) {
			return fmt.Errorf("%w: key %s: scope %q is not a valid scope name", apikey.ErrInvalid, k.ID, truncate(string(s)))
		}
		if keys != nil && keys.Scopes != nil && !declaredScope(declared, s) {
			return fmt.Errorf("%w: key %s: scope %q is not declared in KeyConfig.Scopes", apikey.ErrInvalid, k.ID, s)
		}
	}
	return nil
}

// validID is the rule of key IDs: 1 to 128 visible ASCII characters.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validScope is the rule of scope names: 1 to 64 characters of
// [a-z0-9_.-:], with an optional trailing "*" after a colon.
func validScope(s apikey.Scope) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-', c == ':':
		case c == '*' && i == len(s)-1 && i > 1 && s[i-1] == ':':
		default:
			return false
		}
	}
	return true
}

// declaredScope reports whether s is declared, or is a wildcard "res:*"
// covering a declared scope.
func declaredScope(declared []apikey.Scope, s apikey.Scope) bool {
	if slices.Contains(declared, s) {
		return true
	}
	if base, ok := strings.CutSuffix(string(s), "*"); ok {
		for _, d := range declared {
			if strings.HasPrefix(string(d), base) {
				return true
			}
		}
	}
	return false
}

// find returns the record cred can be the key of, or nil. fast holds the
// fast index's key of cred for each kind in ix.kinds.
func (ix *index) find(cred string, fast []string) *entry {
	for _, k := range fast {
		if e := ix.fast[k]; e != nil && strings.HasPrefix(cred, e.prefix) {
			return e
		}
	}
	for _, n := range ix.lengths {
		if len(cred) > n {
			if e := ix.slow[cred[:n]]; e != nil {
				return e
			}
		}
	}
	return nil
}

// remove forgets e; it reports whether e was still there.
func (ix *index) remove(e *entry) bool {
	if ix.byID[e.key.ID] != e {
		return false
	}
	delete(ix.byID, e.key.ID)
	if e.slow() {
		delete(ix.slow, e.lookup)
	} else {
		delete(ix.fast, e.fast)
	}
	ix.left[e.scheme]--
	return true
}
