package manage

import (
	"fmt"
	"maps"
	"strings"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/sweep"
)

// reservedPrefixes are the metadata keys other packages of the module keep
// on a key for their own bookkeeping (package sweep's "sweep.<kind>"
// records). The page and the API neither show nor accept them, and an
// update of the metadata keeps them: a customer cannot forge or wipe them.
var reservedPrefixes = []string{sweep.MetadataPrefix}

func reserved(name string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// checkMetadata refuses metadata that names a reserved key.
func checkMetadata(m map[string]string) error {
	for name := range m {
		if reserved(name) {
			return fmt.Errorf("%w: metadata: %q is reserved (keys starting with %q)", apikey.ErrInvalid, name, strings.Join(reservedPrefixes, `", "`))
		}
	}
	return nil
}

// withReserved is the metadata m with the reserved entries of current,
// which an update does not touch.
func withReserved(m, current map[string]string) map[string]string {
	var out map[string]string
	for name, v := range current {
		if reserved(name) {
			if out == nil {
				out = maps.Clone(m)
				if out == nil {
					out = map[string]string{}
				}
			}
			out[name] = v
		}
	}
	if out == nil {
		return m
	}
	return out
}

// publicMetadata is m without its reserved entries.
func publicMetadata(m map[string]string) map[string]string {
	var out map[string]string
	for name := range m {
		if reserved(name) {
			out = maps.Clone(m)
			maps.DeleteFunc(out, func(name, _ string) bool { return reserved(name) })
			break
		}
	}
	if out == nil {
		return m
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
