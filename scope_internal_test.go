package apikey

import (
	"errors"
	"strings"
	"testing"
)

// commonMethodIndex and commonMethods must agree.
func TestCommonMethodIndex(t *testing.T) {
	for i, m := range commonMethods {
		if got := commonMethodIndex(m); got != i {
			t.Errorf("commonMethodIndex(%q) = %d, want %d", m, got, i)
		}
	}
	if commonMethodIndex("TRACE") != -1 || commonMethodIndex("get") != -1 || commonMethodIndex("") != -1 {
		t.Error("only the exact common methods have an index")
	}
}

func TestMethodPolicyRequired(t *testing.T) {
	p := ReadWritePolicy()
	for m, want := range map[string]Scope{
		"GET": "read", "HEAD": "read", "OPTIONS": "read",
		"POST": "write", "PUT": "write", "PATCH": "write", "DELETE": "write", "PROPFIND": "write", "get": "write",
	} {
		got, ok := p.required(m)
		if !ok || got != want {
			t.Errorf("ReadWritePolicy().required(%q) = %q, %v; want %q", m, got, ok, want)
		}
	}
	if _, ok := (MethodPolicy{"GET": "read"}).required("POST"); ok {
		t.Error("a method not listed, without \"*\", is refused")
	}
	if s, ok := (MethodPolicy{"GET": ""}).required("GET"); !ok || s != "" {
		t.Error("an empty scope: the method needs none")
	}
}

// The compiled policy answers exactly as the map does, for the common
// methods (precomputed) and the others; later changes to the map do not
// apply.
func TestCompiledPolicyAgrees(t *testing.T) {
	set, err := NewScopeSet(map[Scope][]Scope{"read": nil, "write": nil, "admin": nil})
	if err != nil {
		t.Fatal(err)
	}
	methods := append(commonMethods[:], "TRACE", "PROPFIND", "get", "")
	for _, p := range []MethodPolicy{
		ReadWritePolicy(),
		{"GET": "read", "*": "admin"},
		{"GET": "read", "POST": "write"},
		{"DELETE": "admin", "GET": ""},
		{},
	} {
		c, err := compilePolicy(p, set)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		for _, m := range methods {
			ws, wok := p.required(m)
			gs, gok := c.required(m)
			if ws != gs || wok != gok {
				t.Errorf("%v: %q: compiled %q, %v; map %q, %v", p, m, gs, gok, ws, wok)
			}
		}
		want, wantOK := c.required("PROPFIND")
		p["PROPFIND"] = "nope"
		if got, ok := c.required("PROPFIND"); got != want || ok != wantOK {
			t.Errorf("%v: a change to the map after compiling applied", p)
		}
	}
	if c, err := compilePolicy(nil, set); c != nil || err != nil {
		t.Error("a nil policy compiles to nil: no scope check")
	}
	for _, bad := range []MethodPolicy{{"GET": "delete"}, {"": "read"}, {"GET": "Bad Scope"}} {
		if _, err := compilePolicy(bad, set); !errors.Is(err, ErrInvalid) {
			t.Errorf("compilePolicy(%v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestScopeSetCheck(t *testing.T) {
	set, err := NewScopeSet(map[Scope][]Scope{"read": nil, "stepsies:write": nil})
	if err != nil {
		t.Fatal(err)
	}
	var none *ScopeSet
	for _, tt := range []struct {
		scope          Scope
		withSet, noSet bool
	}{
		{"read", true, true},
		{"stepsies:*", true, true}, // a wildcard over a declared resource
		{"other:*", false, true},
		{"write", false, true},
		{"READ", false, false},
		{"bad scope", false, false},
		{"", false, false},
		{"*", false, false},
		{"a*", false, false},
		{":*", false, false}, // a wildcard needs a resource
		{"a:*", false, true},
		{Scope(strings.Repeat("a", 65)), false, false},
		{Scope(strings.Repeat("a", 64)), false, true},
	} {
		if got := set.check(tt.scope) == nil; got != tt.withSet {
			t.Errorf("set.check(%q) ok = %v, want %v", tt.scope, got, tt.withSet)
		}
		if got := none.check(tt.scope) == nil; got != tt.noSet {
			t.Errorf("nil.check(%q) ok = %v, want %v", tt.scope, got, tt.noSet)
		}
	}
}

// A requirement is met by any one of its alternatives, each in full; when
// it is not, the missing scope named in the 403 is the first one lacking
// from the first alternative.
func TestRequirementMet(t *testing.T) {
	set, err := NewScopeSet(map[Scope][]Scope{"read": nil, "write": nil, "billing": nil, "admin": {"read", "write"}})
	if err != nil {
		t.Fatal(err)
	}
	adminOrReadBilling := requirement{{"admin"}, {"read", "billing"}}
	for _, tt := range []struct {
		req     requirement
		granted []Scope
		missing Scope
		ok      bool
	}{
		{requirement{{"read", "write"}}, []Scope{"read"}, "write", false},
		{requirement{{"read", "write"}}, []Scope{"admin"}, "", true},
		{requirement{{"read", "write"}}, nil, "read", false},
		{adminOrReadBilling, []Scope{"admin"}, "", true},
		{adminOrReadBilling, []Scope{"read", "billing"}, "", true},
		{adminOrReadBilling, []Scope{"billing", "read"}, "", true},
		{adminOrReadBilling, []Scope{"read"}, "admin", false},
		{adminOrReadBilling, []Scope{"billing", "write"}, "admin", false},
	} {
		missing, ok := tt.req.met(set, tt.granted)
		if missing != tt.missing || ok != tt.ok {
			t.Errorf("%v met by %v = %q, %v; want %q, %v", tt.req, tt.granted, missing, ok, tt.missing, tt.ok)
		}
	}
	for _, bad := range []requirement{nil, {}, {{}}, {{"read"}, {}}, {{"delete"}}, {{"read"}, {"Bad"}}} {
		if err := bad.check(set); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v.check = %v, want ErrInvalid", bad, err)
		}
	}
	if err := adminOrReadBilling.check(set); err != nil {
		t.Error(err)
	}
}
