package main

import (
	"cmp"
	"encoding/base64"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/presets"
)

// The environment variables the tool reads.
const (
	envStore   = "APIKEY_STORE"   // the store, when --store is not given
	envFormat  = "APIKEY_FORMAT"  // the key format, when --format is not given
	envScopes  = "APIKEY_SCOPES"  // the declared scopes, when --declared-scopes is not given
	envPeppers = "APIKEY_PEPPERS" // id:base64,… the current pepper first
	envActor   = "APIKEY_ACTOR"   // the actor of the tool's audit events
)

// defaultTimeout bounds every store call unless --timeout says otherwise.
const defaultTimeout = 10 * time.Second

// options are the common flags.
type options struct {
	store    string
	format   string
	declared string
	timeout  time.Duration
}

// define defines the common flags on fs. Their defaults shown in --help
// never include the environment's values: a DSN may hold a password.
func (o *options) define(fs *flag.FlagSet) {
	fs.StringVar(&o.store, "store", "", "the store: postgres://… or file:/path/keys.json (or a bare path); default $"+envStore)
	fs.StringVar(&o.format, "format", "", "the key format: "+strings.Join(formatNames(), ", ")+"; default $"+envFormat+", else default")
	fs.StringVar(&o.declared, "declared-scopes", "", "declare the scopes keys may hold, comma-separated (read,write,admin); default $"+envScopes+", else the preset's, else any scope")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "bound on every store call")
}

// knownFormat is a key format the tool knows by name.
type knownFormat struct {
	name   string
	format *apikey.Format
	scopes *apikey.ScopeSet // the preset's, nil for default
}

// knownFormats are the formats --format names, default first.
var knownFormats = []knownFormat{
	{"default", apikey.FormatDefault, nil},
	{"stairoids-v1", presets.StairoidsV1.Format, presets.StairoidsV1.Scopes},
	{"stairoids-v2", presets.StairoidsV2.Format, presets.StairoidsV2.Scopes},
	{"stepsies", presets.Stepsies.Format, presets.Stepsies.Scopes},
	{"stax", presets.Stax.Format, presets.Stax.Scopes},
	{"straply", presets.Straply.Format, presets.Straply.Scopes},
}

func formatNames() []string {
	names := make([]string, len(knownFormats))
	for i, f := range knownFormats {
		names[i] = f.name
	}
	return names
}

// formatByName returns the format --format names ("keygate" is default).
func formatByName(name string) (knownFormat, error) {
	if name == "keygate" {
		name = "default"
	}
	for _, f := range knownFormats {
		if f.name == name {
			return f, nil
		}
	}
	return knownFormat{}, usagef("unknown key format %q: use one of %s", name, strings.Join(formatNames(), ", "))
}

// format returns the format the options and the environment name.
func (a *app) format() (knownFormat, error) {
	return formatByName(cmp.Or(a.opts.format, a.getenv(envFormat), "default"))
}

// keyConfig returns the KeyConfig of the server: its format, the peppers
// of $APIKEY_PEPPERS and the declared scopes.
func (a *app) keyConfig() (apikey.KeyConfig, error) {
	f, err := a.format()
	if err != nil {
		return apikey.KeyConfig{}, err
	}
	keys := apikey.KeyConfig{Formats: []*apikey.Format{f.format}, Scopes: f.scopes, Clock: a.now}
	if decl := cmp.Or(a.opts.declared, a.getenv(envScopes)); decl != "" {
		if keys.Scopes, err = declareScopes(decl); err != nil {
			return apikey.KeyConfig{}, err
		}
	}
	if keys.Peppers, err = parsePeppers(a.getenv(envPeppers)); err != nil {
		return apikey.KeyConfig{}, err
	}
	if err := keys.Check(); err != nil {
		return apikey.KeyConfig{}, usagef("key configuration: %w", err)
	}
	return keys, nil
}

// declareScopes declares the scopes of a comma-separated list, none
// implying another.
func declareScopes(list string) (*apikey.ScopeSet, error) {
	decl := map[apikey.Scope][]apikey.Scope{}
	for _, s := range splitList(list) {
		decl[apikey.Scope(s)] = nil
	}
	set, err := apikey.NewScopeSet(decl)
	if err != nil {
		return nil, usagef("--declared-scopes: %w", err)
	}
	return set, nil
}

// parsePeppers decodes $APIKEY_PEPPERS: comma-separated id:base64 pairs,
// the current pepper first. Its errors never contain a pepper.
func parsePeppers(env string) ([]apikey.Pepper, error) {
	var peppers []apikey.Pepper
	for i, pair := range splitList(env) {
		id, b64, ok := strings.Cut(pair, ":")
		if !ok || id == "" {
			return nil, usagef("$%s: entry %d is not id:base64", envPeppers, i+1)
		}
		secret, err := decodeBase64(b64)
		if err != nil {
			return nil, usagef("$%s: pepper %q is not base64", envPeppers, id)
		}
		p, err := apikey.NewPepper(id, secret)
		if err != nil {
			return nil, usagef("$%s: %w", envPeppers, err)
		}
		peppers = append(peppers, p)
	}
	return peppers, nil
}

// decodeBase64 accepts standard and URL base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// listFlag is a repeatable flag whose values may be comma-separated lists:
// --scope read --scope write, or --scope read,write.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	items := splitList(v)
	if len(items) == 0 {
		return fmt.Errorf("empty list")
	}
	*l = append(*l, items...)
	return nil
}

// scopes returns the list as scopes, each once, in order.
func (l listFlag) scopes() []apikey.Scope {
	var out []apikey.Scope
	for _, s := range l {
		if !slices.Contains(out, apikey.Scope(s)) {
			out = append(out, apikey.Scope(s))
		}
	}
	return out
}
