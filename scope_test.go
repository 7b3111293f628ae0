package apikey_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

func TestScopeImplication(t *testing.T) {
	set, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{
		"read": nil, "write": nil, "admin": {"read", "write"},
		"owner":         {"admin"}, // transitive: owner ⇒ admin ⇒ read, write
		"stepsies:read": nil, "stepsies:write": nil, "stepsies:publish": nil,
		"editor":     {"stepsies:*"},
		"stepsies:*": nil,
	})
	require.NoError(t, err)
	tests := []struct {
		granted  []apikey.Scope
		required apikey.Scope
		want     bool
	}{
		{[]apikey.Scope{"read"}, "read", true},
		{[]apikey.Scope{"read"}, "write", false},
		{[]apikey.Scope{"admin"}, "read", true},
		{[]apikey.Scope{"admin"}, "write", true},
		{[]apikey.Scope{"admin"}, "owner", false},
		{[]apikey.Scope{"owner"}, "write", true},
		{[]apikey.Scope{"write", "read"}, "read", true},
		{[]apikey.Scope{"stepsies:*"}, "stepsies:publish", true},
		{[]apikey.Scope{"stepsies:*"}, "stepsiesx:read", false},
		{[]apikey.Scope{"stepsies:*"}, "read", false},
		{[]apikey.Scope{"editor"}, "stepsies:write", true},
		{[]apikey.Scope{"editor"}, "write", false},
		{[]apikey.Scope{"stepsies:read"}, "stepsies:write", false},
		{nil, "read", false},
		{[]apikey.Scope{"undeclared"}, "undeclared", true},
		{[]apikey.Scope{"READ"}, "read", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, set.Allows(tt.granted, tt.required), "%v ⇒ %s", tt.granted, tt.required)
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() { set.Allows([]apikey.Scope{"editor", "admin"}, "stepsies:write") }))
}

func TestScopeDeclarations(t *testing.T) {
	set, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "stepsies:write": nil})
	require.NoError(t, err)
	assert.Equal(t, []apikey.Scope{"read", "stepsies:write"}, set.Scopes())

	var none *apikey.ScopeSet
	assert.True(t, none.Allows([]apikey.Scope{"x:*"}, "x:y"))
	assert.True(t, none.Allows([]apikey.Scope{"read"}, "read"))
	assert.False(t, none.Allows([]apikey.Scope{"admin"}, "read"), "no declarations, no implication")
	assert.Nil(t, none.Scopes())

	empty, err := apikey.NewScopeSet(nil)
	require.NoError(t, err)
	assert.Empty(t, empty.Scopes())

	for name, decl := range map[string]map[apikey.Scope][]apikey.Scope{
		"implies an undeclared scope": {"admin": {"read"}},
		"upper case":                  {"Bad": nil},
		"space":                       {"bad scope": nil},
		"empty":                       {"": nil},
		"lone wildcard":               {"*": nil},
		"wildcard without colon":      {"a*": nil},
		"too long":                    {apikey.Scope(strings.Repeat("a", 65)): nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := apikey.NewScopeSet(decl)
			assert.ErrorIs(t, err, apikey.ErrInvalid)
		})
	}
	_, err = apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"admin": {"read"}})
	assert.ErrorContains(t, err, "not declared")

	cyclic, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"a": {"b"}, "b": {"a"}})
	require.NoError(t, err, "cycles are harmless")
	assert.True(t, cyclic.Allows([]apikey.Scope{"a"}, "b"))
	assert.True(t, cyclic.Allows([]apikey.Scope{"b"}, "a"))
}

// A key may be granted a declared scope, or a wildcard over a resource
// that has one; with no declarations, any well-formed scope.
func TestKeyScopesMustBeDeclared(t *testing.T) {
	set, err := apikey.NewScopeSet(map[apikey.Scope][]apikey.Scope{"read": nil, "stepsies:write": nil})
	require.NoError(t, err)
	declared := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}, Scopes: set}
	undeclared := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	tests := []struct {
		scope          apikey.Scope
		withSet, noSet bool
	}{
		{"read", true, true},
		{"stepsies:write", true, true},
		{"stepsies:*", true, true},
		{"other:*", false, true},
		{"write", false, true},
		{"anything:goes", false, true},
		{"READ", false, false},
		{"bad scope", false, false},
		{"", false, false},
		{"*", false, false},
		{"a*", false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.scope), func(t *testing.T) {
			for _, c := range []struct {
				keys apikey.KeyConfig
				ok   bool
			}{{declared, tt.withSet}, {undeclared, tt.noSet}} {
				_, err := c.keys.NewKey(apikey.KeySpec{Name: "n", Scopes: []apikey.Scope{tt.scope}})
				if c.ok {
					assert.NoError(t, err)
				} else {
					assert.ErrorIs(t, err, apikey.ErrInvalid)
				}
			}
		})
	}
}

func TestReadWritePolicy(t *testing.T) {
	p := apikey.ReadWritePolicy()
	assert.Equal(t, apikey.MethodPolicy{
		"GET": "read", "HEAD": "read", "OPTIONS": "read",
		"POST": "write", "PUT": "write", "PATCH": "write", "DELETE": "write",
		"*": "write",
	}, p)
	p["GET"] = "admin"
	assert.Equal(t, apikey.Scope("read"), apikey.ReadWritePolicy()["GET"], "each call returns a new map")
}
