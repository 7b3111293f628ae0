// Package presets reproduces the key handling of five real APIs with
// apikey's configuration alone: their key formats, scopes and what each
// implies, which scope each HTTP method needs, the exact error bodies and,
// for Stax.ai, the owner header.
//
//	p := presets.Straply
//	keys := p.Keys() // add Peppers or a Clock here
//	store, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
//	mw, err := apikey.New(p.Config(keys, store))
//
// Each setting lives in one place: the format and scopes in the KeyConfig
// that store and middleware share, the rest in the middleware's Config.
//
//	API             format                            scopes                        error body
//	Stairoids v1    sk_live_/sk_test_ + 32 base62     read (GET), read_write        {"error","message","request_id"}
//	Stairoids v2    sk_live_/sk_test_ + 32 base62     read, write, read_write       {"error":{…},"meta":{"request_id"}}
//	Stepsies        sk_ + 48 hex                      read, write, admin            {"error":{"code","message"}}
//	Stax.ai         40 × [a-z0-9], no prefix          admin; Email header           HTTP 200 {"success":false,"authError":true,…}
//	Straply         stp_live_/stp_test_ + 31 [a-z0-9] read, write, admin            {"error":{"code","message","status"}}
package presets

import (
	"github.com/keygate/apikey"
)

// Preset is the configuration that reproduces one API.
type Preset struct {
	// Name is the API's name.
	Name string
	// Format of the API's keys.
	Format *apikey.Format
	// Scopes the API declares, with their implications.
	Scopes *apikey.ScopeSet
	// MethodPolicy is the scope each HTTP method needs.
	MethodPolicy apikey.MethodPolicy
	// Style writes the API's error bodies, word for word.
	Style apikey.ErrorStyle
	// OwnerHeader binds keys to their owner ("" for none).
	OwnerHeader string
}

// Keys returns the KeyConfig of the API: its format and scopes. Give the
// same value to the store and, through Config, to the middleware.
func (p Preset) Keys() apikey.KeyConfig {
	return apikey.KeyConfig{Formats: []*apikey.Format{p.Format}, Scopes: p.Scopes}
}

// Config returns the middleware's configuration for the API over store,
// with keys (from Keys, with whatever you added to it).
func (p Preset) Config(keys apikey.KeyConfig, store apikey.KeyStore) apikey.Config {
	return apikey.Config{
		Keys:         keys,
		Store:        store,
		MethodPolicy: p.MethodPolicy,
		Style:        p.Style,
		OwnerHeader:  p.OwnerHeader,
	}
}

// The formats of the APIs' keys.
var (
	// FormatStairoids: sk_live_ / sk_test_ and 32 base62 characters (190.5
	// bits), 40 characters in all.
	FormatStairoids = format(apikey.FormatConfig{
		Name: "stairoids", LivePrefix: "sk_live_", TestPrefix: "sk_test_",
		Alphabet: base62, Length: 32,
	})
	// FormatStepsies: sk_ and 48 lowercase hex characters (192 bits), 51
	// characters in all. Every key is live.
	FormatStepsies = format(apikey.FormatConfig{
		Name: "stepsies", LivePrefix: "sk_", Alphabet: "0123456789abcdef", Length: 48,
	})
	// FormatStax: 40 characters of [a-z0-9] (206.8 bits), no prefix. Every
	// key is live.
	FormatStax = format(apikey.FormatConfig{
		Name: "stax", Alphabet: lowerAlnum, Length: 40,
	})
	// FormatStraply: stp_live_ / stp_test_ and 31 characters of [a-z0-9]
	// (160.3 bits), 40 characters in all.
	FormatStraply = format(apikey.FormatConfig{
		Name: "straply", LivePrefix: "stp_live_", TestPrefix: "stp_test_",
		Alphabet: lowerAlnum, Length: 31,
	})
)

const (
	base62     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	lowerAlnum = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// The presets.
var (
	// StairoidsV1 is the Stairoids API v1: the Read-only scope ("read")
	// allows GET only, Read-Write ("read_write") every method; flat error
	// bodies with request_id.
	StairoidsV1 = Preset{
		Name:         "Stairoids API v1",
		Format:       FormatStairoids,
		Scopes:       stairoidsScopes,
		MethodPolicy: apikey.MethodPolicy{"GET": "read", "*": "write"},
		Style: style(apikey.ShapeFlat, apikey.Messages{
			Unauthorized: "Missing or invalid API key. Provide a valid Bearer token in the Authorization header.",
			Forbidden:    "This API key does not have {scope} access. Generate a Read-Write key to perform this operation.",
			Unavailable:  "Authentication is temporarily unavailable. Retry the request shortly.",
		}),
	}

	// StairoidsV2 is the Stairoids API v2: scopes read (GET), write (POST,
	// PATCH, DELETE) and read_write (every method; it implies read and
	// write); nested error bodies with meta.request_id, and param "scope"
	// in a 403.
	StairoidsV2 = Preset{
		Name:         "Stairoids API v2",
		Format:       FormatStairoids,
		Scopes:       stairoidsScopes,
		MethodPolicy: apikey.MethodPolicy{"GET": "read", "POST": "write", "PATCH": "write", "DELETE": "write", "*": "read_write"},
		Style: style(apikey.ShapeNestedMeta, apikey.Messages{
			Unauthorized: "A valid API key is required. Provide it as 'Authorization: Bearer <key>'.",
			Forbidden:    "This API key does not have the '{scope}' scope required for this endpoint.",
			Unavailable:  "Authentication is temporarily unavailable. Retry the request shortly.",
		}),
	}

	// Stepsies: read, write and admin (admin implies read and write); GET
	// needs read, POST, PATCH and DELETE need write; nested error bodies.
	// Guard its admin endpoints with Require("admin"). Keys may expire.
	Stepsies = Preset{
		Name:         "Stepsies",
		Format:       FormatStepsies,
		Scopes:       readWriteAdmin(),
		MethodPolicy: apikey.ReadWritePolicy(),
		Style: style(apikey.ShapeNested, apikey.Messages{
			Unauthorized: "Missing or invalid API key",
			Forbidden:    "Insufficient scope for this action",
			Unavailable:  "Authentication is temporarily unavailable",
		}),
	}

	// Stax is the Stax.ai API: for team administrators only, every request
	// names the key's owner in an Email header, and a failure answers HTTP
	// 200 with authError.
	Stax = Preset{
		Name:         "Stax.ai",
		Format:       FormatStax,
		Scopes:       scopes(map[apikey.Scope][]apikey.Scope{"admin": nil}),
		MethodPolicy: apikey.MethodPolicy{"*": "admin"},
		Style: style(apikey.ShapeAuthError, apikey.Messages{
			Unauthorized: "Invalid authorization request",
			Forbidden:    "Invalid authorization request",
			Unavailable:  "Authorization service unavailable",
		}),
		OwnerHeader: "Email",
	}

	// Straply: requests with live keys count toward the plan quota and
	// those with test (sandbox) keys do not. A counted request is one the
	// API served: authenticated and authorized (apikey.Config.Usage); each
	// is recorded with its key's environment (apikey.Usage.Environment), so
	// a quota sums the live ones. Read and write scopes by method; nested
	// error bodies with status. Its roll keeps the old key working 24
	// hours.
	Straply = Preset{
		Name:         "Straply",
		Format:       FormatStraply,
		Scopes:       readWriteAdmin(),
		MethodPolicy: apikey.ReadWritePolicy(),
		Style: style(apikey.ShapeNestedStatus, apikey.Messages{
			Unauthorized: "Invalid or missing API key.",
			Forbidden:    "The key is valid but does not have permission for this resource.",
			Unavailable:  "Authentication is temporarily unavailable.",
		}),
	}
)

// stairoidsScopes: read_write implies read and write.
var stairoidsScopes = scopes(map[apikey.Scope][]apikey.Scope{
	"read": nil, "write": nil, "read_write": {"read", "write"},
})

func readWriteAdmin() *apikey.ScopeSet {
	return scopes(map[apikey.Scope][]apikey.Scope{"read": nil, "write": nil, "admin": {"read", "write"}})
}

// The declarations above are constants of this package: a mistake in them
// is a bug that the package's tests catch, so the helpers panic.

func format(c apikey.FormatConfig) *apikey.Format {
	f, err := apikey.NewFormat(c)
	if err != nil {
		panic(err)
	}
	return f
}

func scopes(decl map[apikey.Scope][]apikey.Scope) *apikey.ScopeSet {
	s, err := apikey.NewScopeSet(decl)
	if err != nil {
		panic(err)
	}
	return s
}

func style(shape apikey.Shape, msgs apikey.Messages) apikey.ErrorStyle {
	s, err := apikey.NewErrorStyle(shape, msgs)
	if err != nil {
		panic(err)
	}
	return s
}
