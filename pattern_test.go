package apikey_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/presets"
)

// Each format's Pattern finds its generated keys in text, whole, and
// passes over near-misses: a character short or extra, another prefix, a
// character outside the alphabet, a key glued inside a longer token.
func TestFormatPattern(t *testing.T) {
	formats := map[string]*apikey.Format{
		"default":   apikey.FormatDefault,
		"stairoids": presets.FormatStairoids,
		"stepsies":  presets.FormatStepsies,
		"stax":      presets.FormatStax,
		"straply":   presets.FormatStraply,
	}
	for name, f := range formats {
		t.Run(name, func(t *testing.T) {
			re, err := regexp.Compile(f.Pattern())
			require.NoError(t, err, "the pattern compiles: %s", f.Pattern())
			envs := []apikey.Environment{apikey.EnvLive}
			if _, err := (apikey.KeyConfig{Formats: []*apikey.Format{f}}).NewKey(apikey.KeySpec{Name: "t", Environment: apikey.EnvTest}); err == nil {
				envs = append(envs, apikey.EnvTest)
			}
			for _, env := range envs {
				for range 20 {
					key := formatKey(t, f, env)
					for _, text := range []string{key, "token=" + key + "\n", `{"key":"` + key + `"}`, "export KEY='" + key + "'"} {
						m := re.FindStringSubmatch(text)
						if assert.NotNil(t, m, "a %s key in %q", env, strings.ReplaceAll(text, key, "<key>")) {
							assert.Equal(t, key, m[1], "the first group is the key")
						}
					}
					// A key in the middle of the text is found where it is.
					assert.Equal(t, []string{key}, allKeys(re, "a "+key+" b"))

					nearMisses := map[string]string{
						"one character short":  key[:len(key)-1],
						"one character extra":  key + "a",
						"inside a token":       "x" + key,
						"another prefix":       "zz" + key[strings.IndexByte(key, '_')+1:],
						"outside the alphabet": key[:len(key)-8] + "!" + key[len(key)-7:],
					}
					for what, text := range nearMisses {
						assert.Empty(t, allKeys(re, text), "%s must not match", what)
					}
				}
			}
		})
	}
}

func allKeys(re *regexp.Regexp, text string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}
