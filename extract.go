package apikey

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// MaxHeaderValue is the longest credential header examined; a longer one is
// rejected as oversized without being parsed.
const MaxHeaderValue = 4096

// Source is a place a credential can be read from.
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

// FromBearer reads "Authorization: Bearer <key>". The scheme is matched
// case-insensitively (RFC 9110 §11.1) and may be followed by one or more
// spaces; exactly one Authorization header is allowed. This is the default.
func FromBearer() Source {
	return Source{kind: sourceBearer, name: "Authorization"}
}

// FromHeader reads the raw key from a named header, such as X-API-Key.
// Exactly one such header is allowed.
func FromHeader(name string) Source {
	return Source{kind: sourceHeader, name: textproto.CanonicalMIMEHeaderKey(name)}
}

// FromQuery reads the key from a URL query parameter. It is discouraged (RFC
// 6750 §2.3): URLs end up in logs, browser history and Referer headers. Use
// it only for clients that cannot set headers, and consider
// WithHideCredentials. Exactly one such parameter is allowed.
func FromQuery(name string) Source { return Source{kind: sourceQuery, name: name} }

// String describes the source, for logs.
func (s Source) String() string {
	switch s.kind {
	case sourceBearer:
		return "Authorization: Bearer"
	case sourceHeader:
		return "header " + s.name
	case sourceQuery:
		return "query parameter " + s.name
	}
	return "no source"
}

// extract finds the one credential of the request. It returns the
// credential and the index of its source, or a reason: ReasonMissing when no
// source has one, or a problem with what was sent.
func (a *Authenticator) extract(r *http.Request) (cred string, src int, reason Reason) {
	src = -1
	for i := range a.sources {
		c, present, why := a.sources[i].read(r)
		if why != ReasonNone {
			return "", i, why
		}
		if !present {
			continue
		}
		if src >= 0 {
			return "", i, ReasonDuplicate
		}
		cred, src = c, i
	}
	if src < 0 {
		return "", -1, ReasonMissing
	}
	if len(cred) > MaxKeyLength {
		return "", src, ReasonOversized
	}
	return cred, src, ReasonNone
}

// read returns the credential in this source, whether one was present, and
// a reason when what is present is unusable.
func (s *Source) read(r *http.Request) (string, bool, Reason) {
	if s.kind == sourceQuery {
		return readQuery(r.URL.RawQuery, s.name)
	}
	vals := r.Header[s.name]
	switch {
	case len(vals) == 0:
		return "", false, ReasonNone
	case len(vals) > 1:
		return "", true, ReasonDuplicate
	case len(vals[0]) > MaxHeaderValue:
		return "", true, ReasonOversized
	}
	v := vals[0]
	if s.kind == sourceBearer {
		scheme, rest, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", true, ReasonMalformed
		}
		v = strings.TrimLeft(rest, " ")
	}
	if v == "" {
		return "", true, ReasonMalformed
	}
	return v, true, ReasonNone
}

// readQuery finds the parameter in a raw query without parsing the whole
// query (url.ParseQuery allocates a map).
func readQuery(raw, name string) (string, bool, Reason) {
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
			return "", true, ReasonDuplicate
		}
		present = true
		if len(v) > MaxHeaderValue {
			return "", true, ReasonOversized
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return "", true, ReasonMalformed
			}
			v = u
		}
		found = v
	}
	if present && found == "" {
		return "", true, ReasonMalformed
	}
	return found, present, ReasonNone
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
