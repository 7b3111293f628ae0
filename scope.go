package apikey

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Scope names a permission: "read", "admin", "stepsies:write". Granted,
// "stepsies:*" covers every scope starting "stepsies:".
type Scope string

// maxScopeLength is the longest scope name accepted.
const maxScopeLength = 64

// valid reports whether s is a well-formed scope name: 1 to 64 characters of
// [a-z0-9_.-:], with an optional trailing "*" after a colon.
func (s Scope) valid() bool {
	if len(s) == 0 || len(s) > maxScopeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-', c == ':':
		case c == '*' && i == len(s)-1 && i > 1 && s[i-1] == ':':
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

// ScopeSet declares an API's scopes and what each implies (admin ⇒ read +
// write), transitively, precomputed. It is immutable. A nil *ScopeSet
// accepts every well-formed scope, covering only itself.
type ScopeSet struct {
	implied map[Scope]implication
}

type implication struct {
	scopes    map[Scope]struct{} // every scope this one implies, itself included
	wildcards []string           // bases of implied wildcards, "stepsies:"
}

// NewScopeSet declares a ScopeSet: each scope and those it implies, which
// must be declared too: {"read": nil, "write": nil, "admin": {"read",
// "write"}}.
func NewScopeSet(decl map[Scope][]Scope) (*ScopeSet, error) {
	set := &ScopeSet{implied: make(map[Scope]implication, len(decl))}
	for s, imps := range decl {
		if !s.valid() {
			return nil, fmt.Errorf("%w: scope %q is not a valid scope name", ErrInvalid, s)
		}
		for _, i := range imps {
			if _, ok := decl[i]; !ok {
				return nil, fmt.Errorf("%w: scope %q implies %q, which is not declared", ErrInvalid, s, i)
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
		slices.Sort(imp.wildcards)
		set.implied[s] = imp
	}
	return set, nil
}

// check returns nil when s may be granted: it is well formed and
// declared, or a wildcard "res:*" whose resource has a declared scope. A
// nil set accepts every well-formed scope.
func (set *ScopeSet) check(s Scope) error {
	if !s.valid() {
		return fmt.Errorf("%w: scope %q is not a valid scope name: use 1 to %d characters of a-z 0-9 _ . - :, with an optional trailing \":*\"", ErrInvalid, s, maxScopeLength)
	}
	if set == nil {
		return nil
	}
	if _, ok := set.implied[s]; ok {
		return nil
	}
	if base, ok := s.wildcardBase(); ok {
		for d := range set.implied {
			if strings.HasPrefix(string(d), base) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: scope %q is not declared in KeyConfig.Scopes", ErrInvalid, s)
}

// Scopes returns the declared scopes, sorted.
func (set *ScopeSet) Scopes() []Scope {
	if set == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(set.implied))
}

// Allows reports whether granted covers required, itself, by implication
// or by a wildcard.
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

// requirement is what a route asks of a key's scopes: any one of its
// alternatives, each a list of scopes that must all be held.
type requirement [][]Scope

// met reports whether granted satisfies r; when it does not, missing is
// the first scope lacking from the first alternative, for the 403.
func (r requirement) met(set *ScopeSet, granted []Scope) (missing Scope, ok bool) {
	for i, all := range r {
		held := true
		for _, s := range all {
			if !set.Allows(granted, s) {
				if i == 0 {
					missing = s
				}
				held = false
				break
			}
		}
		if held {
			return "", true
		}
	}
	return missing, false
}

// check validates every scope of r against set.
func (r requirement) check(set *ScopeSet) error {
	if len(r) == 0 {
		return fmt.Errorf("%w: a requirement names no scope", ErrInvalid)
	}
	for _, all := range r {
		if len(all) == 0 {
			return fmt.Errorf("%w: an alternative of the requirement names no scope", ErrInvalid)
		}
		for _, s := range all {
			if err := set.check(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// MethodPolicy maps an HTTP method to the scope its requests need
// (Config.MethodPolicy); "*" covers the methods not listed, which are
// otherwise refused (403); an empty Scope needs none. RPC-style APIs guard
// each route with Middleware.Require instead.
type MethodPolicy map[string]Scope

// ReadWritePolicy returns the usual REST mapping: GET, HEAD and OPTIONS need
// "read"; POST, PUT, PATCH, DELETE and every other method need "write".
func ReadWritePolicy() MethodPolicy {
	return MethodPolicy{
		"GET": "read", "HEAD": "read", "OPTIONS": "read",
		"POST": "write", "PUT": "write", "PATCH": "write", "DELETE": "write",
		"*": "write",
	}
}

// required returns the scope a method needs; ok is false when the policy
// refuses the method outright.
func (p MethodPolicy) required(method string) (s Scope, ok bool) {
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

// compilePolicy checks every scope of p against set and precomputes it.
func compilePolicy(p MethodPolicy, set *ScopeSet) (*compiledPolicy, error) {
	if p == nil {
		return nil, nil
	}
	for m, s := range p {
		if m == "" {
			return nil, fmt.Errorf("%w: Config.MethodPolicy has an empty method", ErrInvalid)
		}
		if s == "" {
			continue
		}
		if err := set.check(s); err != nil {
			return nil, fmt.Errorf("Config.MethodPolicy[%q]: %w", m, err)
		}
	}
	c := &compiledPolicy{policy: maps.Clone(p)} // later changes to p do not apply
	for i, m := range commonMethods {
		c.common[i].scope, c.common[i].ok = p.required(m)
	}
	return c, nil
}

func (c *compiledPolicy) required(method string) (Scope, bool) {
	if i := commonMethodIndex(method); i >= 0 {
		return c.common[i].scope, c.common[i].ok
	}
	return c.policy.required(method)
}
