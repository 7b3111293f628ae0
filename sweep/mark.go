package sweep

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/keygate/apikey"
)

// mark is the sweep's record of one finding of a key, the value of
// Metadata[MetadataPrefix+kind]:
//
//	"<at> <key id>"                          delivered
//	"<at> <key id> pending <until> <token>"  claimed by a sweeper until <until>
//	"<at> <key id> retry"                    the last attempt failed
//
// <at> and <until> are RFC 3339 times in UTC with nanoseconds. Key IDs
// hold no spaces.
type mark struct {
	raw      string
	forValue string    // "<at> <key id>"
	state    string    // "", "pending" or "retry"
	until    time.Time // of a pending claim
}

func markKey(kind Kind) string { return MetadataPrefix + string(kind) }

// markFor is the record of a finding about time at of the key id.
func markFor(at time.Time, id string) string {
	return at.UTC().Format(time.RFC3339Nano) + " " + id
}

// parseFor returns the time a record is for.
func parseFor(forValue string) (time.Time, bool) {
	at, _, ok := strings.Cut(forValue, " ")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	return t, err == nil
}

// readMark reads k's record of finding kind; a value the sweep did not
// write reads as no record.
func readMark(k *apikey.Key, kind Kind) mark {
	raw, ok := k.Metadata[markKey(kind)]
	if !ok {
		return mark{}
	}
	f := strings.Fields(raw)
	if len(f) < 2 {
		return mark{raw: raw}
	}
	if _, ok := parseFor(f[0] + " " + f[1]); !ok {
		return mark{raw: raw}
	}
	m := mark{raw: raw, forValue: f[0] + " " + f[1]}
	switch {
	case len(f) == 2:
	case len(f) == 3 && f[2] == "retry":
		m.state = "retry"
	case len(f) == 5 && f[2] == "pending":
		until, err := time.Parse(time.RFC3339Nano, f[3])
		if err != nil {
			return mark{raw: raw}
		}
		m.state, m.until = "pending", until
	default:
		return mark{raw: raw}
	}
	return m
}

// open reports whether the record is of a finding still to deliver, which
// a sweeper may claim at now: to retry, or claimed by a sweeper whose
// claim has expired.
func (m mark) open(now time.Time) bool {
	switch m.state {
	case "retry":
		return true
	case "pending":
		return !now.Before(m.until)
	}
	return false
}

// setMark records value as k's record of finding kind.
func setMark(k *apikey.Key, kind Kind, value string) {
	if k.Metadata == nil {
		k.Metadata = make(map[string]string, 1)
	}
	k.Metadata[markKey(kind)] = value
}

// newToken returns a random claim token, so that a sweeper recognises its
// own claim.
func newToken() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
