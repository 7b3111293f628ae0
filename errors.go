package apikey

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error the package returns wraps one of these, so
// callers test them with errors.Is. None of them ever contains a secret.
var (
	// ErrNotFound is the KeyStore's answer for a digest or ID it does not
	// know. The middleware maps it to 401; any other lookup error is a store
	// failure and maps to 503.
	ErrNotFound = errors.New("apikey: key not found")

	// ErrMalformedKey is wrapped by every *FormatError: the credential does
	// not have the shape of any configured key format.
	ErrMalformedKey = errors.New("apikey: malformed key")

	// ErrInvalid is wrapped by management errors caused by bad input: an
	// empty name, an unknown scope, a negative grace period, an expiry in
	// the past.
	ErrInvalid = errors.New("apikey: invalid input")

	// ErrUnknownScope wraps ErrInvalid: the scope is not declared in the
	// store's ScopeSet.
	ErrUnknownScope = &wrapped{msg: "apikey: unknown scope", parent: ErrInvalid}

	// ErrRevoked is returned when an operation needs a usable key (Roll) and
	// the key has been revoked. Revoking a revoked key is not an error.
	ErrRevoked = errors.New("apikey: key revoked")

	// ErrExpired is returned when Roll is asked for a key past its expiry.
	ErrExpired = errors.New("apikey: key expired")

	// ErrAlreadyRolled is returned when Roll is asked for a key that already
	// has a successor and is only living out its grace period.
	ErrAlreadyRolled = errors.New("apikey: key already rolled")
)

// wrapped is a static error that unwraps to a parent sentinel, so a
// package-level error value can be both specific and general without any
// allocation at the point where it is returned.
type wrapped struct {
	msg    string
	parent error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.parent }

// FormatError says why a credential does not match a key format. It is meant
// for logs and hooks, never for the HTTP response body. Parse returns one of
// the package-level values (ErrKeyEmpty, ErrKeyTooLong, ErrKeyPrefix,
// ErrKeyLength, ErrKeyAlphabet, ErrKeyChecksum), so the reject path does not
// allocate. Every FormatError wraps ErrMalformedKey.
type FormatError struct {
	// Problem is a short machine-readable word: "empty", "too_long",
	// "prefix", "length", "alphabet" or "checksum".
	Problem string
}

// Error says which check failed; it never includes the key.
func (e *FormatError) Error() string { return "apikey: malformed key: bad " + e.Problem }

// Unwrap makes every FormatError match ErrMalformedKey.
func (e *FormatError) Unwrap() error { return ErrMalformedKey }

// The reasons a credential fails a format check.
var (
	ErrKeyEmpty    = &FormatError{Problem: "empty"}
	ErrKeyTooLong  = &FormatError{Problem: "too_long"}
	ErrKeyPrefix   = &FormatError{Problem: "prefix"}
	ErrKeyLength   = &FormatError{Problem: "length"}
	ErrKeyAlphabet = &FormatError{Problem: "alphabet"}
	ErrKeyChecksum = &FormatError{Problem: "checksum"}
)

// Reason is the precise cause of a rejection. It goes to the logger and the
// OnRejected hook; the response body stays generic so that it never tells a
// caller whether a key exists.
type Reason uint8

// The reasons a request is rejected.
const (
	ReasonNone            Reason = iota
	ReasonMissing                // no credential in any configured source
	ReasonDuplicate              // more than one credential (two headers, header and query)
	ReasonOversized              // credential longer than MaxKeyLength
	ReasonMalformed              // bad scheme, prefix, length or alphabet
	ReasonChecksum               // well-formed but the checksum does not match
	ReasonEnvironment            // a key of an environment this server does not accept
	ReasonUnknown                // no key has this digest
	ReasonRevoked                // the key was revoked
	ReasonExpired                // the key is past its expiry
	ReasonRolled                 // the key was rolled and its grace period is over
	ReasonOwner                  // the bound owner header is missing or does not match
	ReasonScope                  // the key lacks a required scope
	ReasonUnauthenticated        // Require ran without an authenticated key in the context
	ReasonStoreFailure           // the store returned an error other than ErrNotFound
	ReasonStoreTimeout           // the store did not answer within the lookup timeout
	ReasonStorePanic             // the store panicked; the panic was recovered
)

var reasonNames = [...]string{
	ReasonNone:            "none",
	ReasonMissing:         "missing",
	ReasonDuplicate:       "duplicate",
	ReasonOversized:       "oversized",
	ReasonMalformed:       "malformed",
	ReasonChecksum:        "bad_checksum",
	ReasonEnvironment:     "environment",
	ReasonUnknown:         "unknown",
	ReasonRevoked:         "revoked",
	ReasonExpired:         "expired",
	ReasonRolled:          "rolled",
	ReasonOwner:           "owner",
	ReasonScope:           "scope",
	ReasonUnauthenticated: "unauthenticated",
	ReasonStoreFailure:    "store_failure",
	ReasonStoreTimeout:    "store_timeout",
	ReasonStorePanic:      "store_panic",
}

// String returns the reason as a short snake_case word.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Status is the HTTP status the reason maps to: 401 for every problem with
// the credential itself, 403 for a valid key that may not do this (scope,
// owner), 503 for a store fault. Styles may answer with another status (the
// Stax style answers 200) but they receive this one.
func (r Reason) Status() int {
	switch r {
	case ReasonNone:
		return 200
	case ReasonScope, ReasonOwner:
		return 403
	case ReasonStoreFailure, ReasonStoreTimeout, ReasonStorePanic:
		return 503
	default:
		return 401
	}
}

// AuthError describes one rejected request. The middleware passes it to the
// ErrorStyle, to the OnRejected hook and to the logger. Its Error method is
// safe to log: it never includes the credential.
type AuthError struct {
	Reason    Reason
	RequestID string
	// Scope is the scope that was needed, for ReasonScope.
	Scope Scope
	// KeyID identifies the key when the store found one (revoked, expired,
	// scope, owner); it is empty otherwise.
	KeyID string
	// Err is the underlying error: a *FormatError, a store error.
	Err error
	// Realm is the realm of the WWW-Authenticate challenge.
	Realm string
}

// Status is the HTTP status for the rejection (see Reason.Status).
func (e AuthError) Status() int { return e.Reason.Status() }

// Error implements error.
func (e AuthError) Error() string {
	s := "apikey: rejected: " + e.Reason.String()
	if e.KeyID != "" {
		s += " (key " + e.KeyID + ")"
	}
	if e.Scope != "" {
		s += " (needs scope " + string(e.Scope) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e AuthError) Unwrap() error { return e.Err }
