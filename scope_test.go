package apikey_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

func TestScopeImplication(t *testing.T) {
	set, err := apikey.DeclareScopes(map[apikey.Scope][]apikey.Scope{
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
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, set.Allows(tt.granted, tt.required), "%v ⇒ %s", tt.granted, tt.required)
	}
	missing, ok := set.AllowsAll([]apikey.Scope{"read"}, []apikey.Scope{"read", "write"})
	assert.False(t, ok)
	assert.Equal(t, apikey.Scope("write"), missing)
	_, ok = set.AllowsAll([]apikey.Scope{"admin"}, []apikey.Scope{"read", "write"})
	assert.True(t, ok)

	assert.Zero(t, testing.AllocsPerRun(100, func() { set.Allows([]apikey.Scope{"editor", "admin"}, "stepsies:write") }))
}

func TestScopeDeclarations(t *testing.T) {
	set := apikey.MustDeclareScopes(map[apikey.Scope][]apikey.Scope{"read": nil, "stepsies:write": nil})
	assert.True(t, set.Declared("read"))
	assert.True(t, set.Declared("stepsies:*"), "a wildcard over a declared resource")
	assert.False(t, set.Declared("other:*"))
	assert.False(t, set.Declared("write"))
	assert.False(t, set.Declared("READ"))
	assert.Equal(t, []apikey.Scope{"read", "stepsies:write"}, set.Scopes())

	var none *apikey.ScopeSet
	assert.True(t, none.Declared("anything:goes"))
	assert.False(t, none.Declared("bad scope"))
	assert.False(t, none.Declared(""))
	assert.False(t, none.Declared("*"))
	assert.False(t, none.Declared("a*"))
	assert.True(t, none.Allows([]apikey.Scope{"x:*"}, "x:y"))
	assert.False(t, none.Allows([]apikey.Scope{"admin"}, "read"), "no declarations, no implication")
	assert.Nil(t, none.Scopes())

	_, err := apikey.DeclareScopes(map[apikey.Scope][]apikey.Scope{"admin": {"read"}})
	assert.ErrorIs(t, err, apikey.ErrUnknownScope)
	_, err = apikey.DeclareScopes(map[apikey.Scope][]apikey.Scope{"Bad Scope": nil})
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	assert.Panics(t, func() { apikey.MustDeclareScopes(map[apikey.Scope][]apikey.Scope{"a": {"b"}}) })

	cyclic, err := apikey.DeclareScopes(map[apikey.Scope][]apikey.Scope{"a": {"b"}, "b": {"a"}})
	require.NoError(t, err, "cycles are harmless")
	assert.True(t, cyclic.Allows([]apikey.Scope{"a"}, "b"))
}

func TestMethodPolicy(t *testing.T) {
	p := apikey.DefaultMethodPolicy()
	for m, want := range map[string]apikey.Scope{
		"GET": "read", "HEAD": "read", "OPTIONS": "read",
		"POST": "write", "PUT": "write", "PATCH": "write", "DELETE": "write", "PROPFIND": "write",
	} {
		got, ok := p.Required(m)
		assert.True(t, ok)
		assert.Equal(t, want, got, m)
	}
	_, ok := apikey.MethodPolicy{"GET": "read"}.Required("POST")
	assert.False(t, ok)
}
