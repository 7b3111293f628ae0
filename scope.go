package apikey

import (
	"fmt"
	"maps"
	"sort"
	"strings"
)

// Scope is the name of a permission, such as "read", "admin" or the resource
// scope "stepsies:write". A granted scope "stepsies:*" covers every scope
// that starts with "stepsies:".
type Scope string

// MaxScopeLength is the longest scope name accepted.
const MaxScopeLength = 64

// valid reports whether s is a well-formed scope name: 1 to 64 characters of
// [a-z0-9_.-:], with an optional trailing "*" after a colon.
func (s Scope) valid() bool {
	if len(s) == 0 || len(s) > MaxScopeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-', c == ':':
		case c == '*' && i == len(s)-1 && i > 0 && s[i-1] == ':':
		default:
			return false
		}
	}
	return true
}

// wildcardBase returns "stepsies:" for "stepsies:*".
func (s Scope) wildcardBase() (string, bool) {
	if len(s) >= 2 && s[len(s)-1] == '*' && s[len(s)-2] == ':' {
		return string(s[:len(s)-1]), true
	}
	return "", false
}

// ScopeSet declares the scopes an API knows and what each implies, such as
// admin ⇒ read + write. Implication is transitive and precomputed, so a
// check costs O(granted scopes). A nil *ScopeSet declares nothing: every
// well-formed scope is accepted and only covers itself (and wildcards their
// resource). A ScopeSet is immutable and safe for concurrent use.
type ScopeSet struct {
	implied map[Scope]implication
}

type implication struct {
	scopes    map[Scope]struct{} // every scope this one implies, itself included
	wildcards []string           // bases of implied wildcards, "stepsies:"
}

// DeclareScopes builds a ScopeSet. Each map entry declares a scope and the
// scopes it directly implies; implied scopes must be declared too.
//
//	apikey.DeclareScopes(map[apikey.Scope][]apikey.Scope{
//		"read": nil, "write": nil,
//		"admin": {"read", "write"},
//	})
func DeclareScopes(decl map[Scope][]Scope) (*ScopeSet, error) {
	set := &ScopeSet{implied: make(map[Scope]implication, len(decl))}
	for s, imps := range decl {
		if !s.valid() {
			return nil, fmt.Errorf("%w: scope %q is not a valid scope name", ErrInvalid, s)
		}
		for _, i := range imps {
			if _, ok := decl[i]; !ok {
				return nil, fmt.Errorf("%w: scope %q implies undeclared scope %q", ErrUnknownScope, s, i)
			}
		}
	}
	for s := range decl {
		imp := implication{scopes: map[Scope]struct{}{}}
		stack := []Scope{s}
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if _, seen := imp.scopes[cur]; seen {
				continue
			}
			imp.scopes[cur] = struct{}{}
			if base, ok := cur.wildcardBase(); ok {
				imp.wildcards = append(imp.wildcards, base)
			}
			stack = append(stack, decl[cur]...)
		}
		sort.Strings(imp.wildcards)
		set.implied[s] = imp
	}
	return set, nil
}

// MustDeclareScopes is DeclareScopes for package-level variables.
func MustDeclareScopes(decl map[Scope][]Scope) *ScopeSet {
	s, err := DeclareScopes(decl)
	if err != nil {
		panic(err)
	}
	return s
}

// Declared reports whether s may be granted: it is declared, or it is a
// wildcard "res:*" and some declared scope starts with "res:". A nil set
// accepts every well-formed scope.
func (set *ScopeSet) Declared(s Scope) bool {
	if !s.valid() {
		return false
	}
	if set == nil {
		return true
	}
	if _, ok := set.implied[s]; ok {
		return true
	}
	if base, ok := s.wildcardBase(); ok {
		for d := range set.implied {
			if strings.HasPrefix(string(d), base) {
				return true
			}
		}
	}
	return false
}

// Scopes returns the declared scopes, sorted.
func (set *ScopeSet) Scopes() []Scope {
	if set == nil {
		return nil
	}
	out := make([]Scope, 0, len(set.implied))
	for s := range set.implied {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Allows reports whether the granted scopes cover required, through
// equality, declared implication or a wildcard. It does not allocate.
func (set *ScopeSet) Allows(granted []Scope, required Scope) bool {
	for _, g := range granted {
		if g == required {
			return true
		}
		if base, ok := g.wildcardBase(); ok && strings.HasPrefix(string(required), base) {
			return true
		}
		if set == nil {
			continue
		}
		imp, ok := set.implied[g]
		if !ok {
			continue
		}
		if _, ok := imp.scopes[required]; ok {
			return true
		}
		for _, base := range imp.wildcards {
			if strings.HasPrefix(string(required), base) {
				return true
			}
		}
	}
	return false
}

// AllowsAll reports whether granted covers every scope in required, and if
// not, returns the first scope missing.
func (set *ScopeSet) AllowsAll(granted []Scope, required []Scope) (Scope, bool) {
	for _, r := range required {
		if !set.Allows(granted, r) {
			return r, false
		}
	}
	return "", true
}

// MethodPolicy maps an HTTP method to the scope a request with that method
// needs. The key "*" covers every method not listed; a method that is not
// listed when there is no "*" entry is refused (403). An empty Scope means
// the method needs no scope.
type MethodPolicy map[string]Scope

// DefaultMethodPolicy returns the usual mapping: GET, HEAD and OPTIONS need
// "read"; POST, PUT, PATCH, DELETE and every other method need "write".
func DefaultMethodPolicy() MethodPolicy {
	return MethodPolicy{
		"GET": "read", "HEAD": "read", "OPTIONS": "read",
		"POST": "write", "PUT": "write", "PATCH": "write", "DELETE": "write",
		"*": "write",
	}
}

// Required returns the scope a method needs; ok is false when the policy
// refuses the method outright.
func (p MethodPolicy) Required(method string) (s Scope, ok bool) {
	if s, ok = p[method]; ok {
		return s, true
	}
	s, ok = p["*"]
	return s, ok
}

// commonMethods are the methods a compiled policy answers without a map
// lookup.
var commonMethods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func commonMethodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	}
	return -1
}

// compiledPolicy is a MethodPolicy with the answers for the common methods
// precomputed, so the request path does not hash the method.
type compiledPolicy struct {
	policy MethodPolicy
	common [len(commonMethods)]struct {
		scope Scope
		ok    bool
	}
}

func compilePolicy(p MethodPolicy) *compiledPolicy {
	if p == nil {
		return nil
	}
	c := &compiledPolicy{policy: maps.Clone(p)} // later changes to p do not apply
	for i, m := range commonMethods {
		c.common[i].scope, c.common[i].ok = p.Required(m)
	}
	return c
}

func (c *compiledPolicy) required(method string) (Scope, bool) {
	if i := commonMethodIndex(method); i >= 0 {
		return c.common[i].scope, c.common[i].ok
	}
	return c.policy.Required(method)
}
