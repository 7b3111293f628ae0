package apikey

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// maxHeaderValue is the longest credential header examined; a longer one is
// rejected as oversized without being parsed.
const maxHeaderValue = 4096

// Source is a place a credential can be read from (Config.Sources).
type Source struct {
	kind sourceKind
	name string // canonical header name or query parameter
}

type sourceKind uint8

const (
	sourceBearer sourceKind = iota + 1
	sourceHeader
	sourceQuery
)

// FromBearer reads one "Authorization: Bearer <key>" header, the scheme in
// any case (RFC 9110 §11.1). It is the default.
func FromBearer() Source {
	return Source{kind: sourceBearer, name: "Authorization"}
}

// FromHeader reads the key from one header of this name, such as
// X-API-Key.
func FromHeader(name string) Source {
	return Source{kind: sourceHeader, name: textproto.CanonicalMIMEHeaderKey(name)}
}

// FromQuery reads the key from one query parameter: discouraged (RFC 6750
// §2.3: URLs end up in logs), for clients that cannot set headers, with
// Config.HideCredentials.
func FromQuery(name string) Source { return Source{kind: sourceQuery, name: name} }

// extract finds the one credential of the request. It returns the
// credential and the index of its source, or a reason: ReasonMissing when no
// source has one, ReasonMalformed (with the detail) for what was sent.
func (m *Middleware) extract(r *http.Request) (cred string, src int, reason Reason, err error) {
	src = -1
	for i := range m.sources {
		c, present, err := m.sources[i].read(r)
		if err != nil {
			return "", i, ReasonMalformed, err
		}
		if !present {
			continue
		}
		if src >= 0 {
			return "", i, ReasonMalformed, errDuplicate
		}
		cred, src = c, i
	}
	if src < 0 {
		return "", -1, ReasonMissing, nil
	}
	if len(cred) > maxKeyLength {
		return "", src, ReasonMalformed, errKeyTooLong
	}
	return cred, src, 0, nil
}

// read returns the credential in this source, whether one was present, and
// an error when what is present is unusable.
func (s *Source) read(r *http.Request) (string, bool, error) {
	if s.kind == sourceQuery {
		return readQuery(r.URL.RawQuery, s.name)
	}
	vals := r.Header[s.name]
	switch {
	case len(vals) == 0:
		return "", false, nil
	case len(vals) > 1:
		return "", true, errDuplicate
	case len(vals[0]) > maxHeaderValue:
		return "", true, errOversized
	}
	v := vals[0]
	if s.kind == sourceBearer {
		// The scheme is what comes before the first space, "Bearer" in
		// any case (RFC 9110 §11.1: ASCII case folding); the key follows
		// one or more spaces.
		switch {
		case len(v) > 6 && v[6] == ' ' && equalFoldASCII(v[:6], "Bearer"):
			v = strings.TrimLeft(v[7:], " ")
		case equalFoldASCII(v, "Bearer"):
			v = "" // the scheme alone
		default:
			return "", true, errScheme
		}
	}
	if v == "" {
		return "", true, errKeyEmpty
	}
	return v, true, nil
}

// readQuery finds the parameter in a raw query without parsing the whole
// query (url.ParseQuery allocates a map).
func readQuery(raw, name string) (string, bool, error) {
	var found string
	present := false
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			if uk, err := url.QueryUnescape(k); err != nil || uk != name {
				continue
			}
		}
		if present {
			return "", true, errDuplicate
		}
		present = true
		if len(v) > maxHeaderValue {
			return "", true, errOversized
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return "", true, errEscape
			}
			v = u
		}
		found = v
	}
	if present && found == "" {
		return "", true, errKeyEmpty
	}
	return found, present, nil
}

// hideCredential returns a shallow copy of r without the credential of
// source s, so the next handler never sees it.
func hideCredential(r *http.Request, s Source) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	switch s.kind {
	case sourceQuery:
		u := *r.URL
		q := u.Query()
		q.Del(s.name)
		u.RawQuery = q.Encode()
		r2.URL = &u
		r2.RequestURI = u.RequestURI()
	default:
		r2.Header = r.Header.Clone()
		r2.Header.Del(s.name)
	}
	return r2
}
