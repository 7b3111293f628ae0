package apikey

// Preset bundles the configuration that reproduces one seed API: its key
// format, scopes and their implications, method policy, error style and
// owner binding. Use StoreConfig for the store and Options for the
// middleware; options given after them override them.
type Preset struct {
	Name        string
	Format      *Format
	Scopes      *ScopeSet
	Policy      MethodPolicy
	Style       ErrorStyle
	OwnerHeader string // "" for none
}

// StoreConfig returns the store configuration of the preset.
func (p Preset) StoreConfig() StoreConfig {
	return StoreConfig{Format: p.Format, Scopes: p.Scopes}
}

// Options returns the middleware options of the preset.
func (p Preset) Options() []Option {
	opts := []Option{WithFormats(p.Format), WithScopes(p.Scopes), WithMethodPolicy(p.Policy), WithStyle(p.Style)}
	if p.OwnerHeader != "" {
		opts = append(opts, WithOwnerHeader(p.OwnerHeader))
	}
	return opts
}

// stairoidsScopes are seeds 000 and 001's scopes: read_write implies read
// and write.
var stairoidsScopes = MustDeclareScopes(map[Scope][]Scope{
	"read": nil, "write": nil, "read_write": {"read", "write"},
})

// The seed presets.
var (
	// PresetStairoidsV1 is seed 000: sk_live_/sk_test_ keys; Read-only
	// ("read") allows GET only, Read-Write ("read_write") every method; flat
	// error bodies with request_id.
	PresetStairoidsV1 = Preset{
		Name:   "stairoids-v1",
		Format: FormatStairoids,
		Scopes: stairoidsScopes,
		Policy: MethodPolicy{"GET": "read", "*": "write"},
		Style:  StyleFlat,
	}

	// PresetStairoidsV2 is seed 001: scopes read (GET), write (POST, PATCH,
	// DELETE) and read_write (every method; it implies read and write);
	// nested error bodies with meta.request_id and param "scope" on 403.
	PresetStairoidsV2 = Preset{
		Name:   "stairoids-v2",
		Format: FormatStairoids,
		Scopes: stairoidsScopes,
		Policy: MethodPolicy{"GET": "read", "POST": "write", "PATCH": "write", "DELETE": "write", "*": "read_write"},
		Style:  StyleNestedMeta,
	}

	// PresetStepsies is seed 002: sk_ + 48 hex keys; read, write and admin
	// (admin implies read and write); GET needs read and POST, PATCH,
	// DELETE need write; nested error bodies without meta. Guard the admin
	// endpoints with Require("admin").
	PresetStepsies = Preset{
		Name:   "stepsies",
		Format: FormatStepsies,
		Scopes: MustDeclareScopes(map[Scope][]Scope{
			"read": nil, "write": nil, "admin": {"read", "write"},
		}),
		Policy: DefaultMethodPolicy(),
		Style:  StyleNested,
	}

	// PresetStax is seed 003: 40-character [a-z0-9] keys with no prefix,
	// for administrators only; every request needs the key's owner in an
	// Email header; failures answer HTTP 200 with authError.
	PresetStax = Preset{
		Name:        "stax",
		Format:      FormatStax,
		Scopes:      MustDeclareScopes(map[Scope][]Scope{"admin": nil}),
		Policy:      MethodPolicy{"*": "admin"},
		Style:       StyleStax,
		OwnerHeader: "Email",
	}

	// PresetStraply is seed 004: stp_live_/stp_test_ keys (test keys serve
	// sandbox data and never count toward quota); read and write scopes by
	// method; nested error bodies with status.
	PresetStraply = Preset{
		Name:   "straply",
		Format: FormatStraply,
		Scopes: MustDeclareScopes(map[Scope][]Scope{
			"read": nil, "write": nil, "admin": {"read", "write"},
		}),
		Policy: DefaultMethodPolicy(),
		Style:  StyleNestedStatus,
	}
)
