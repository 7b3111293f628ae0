package apikey

import (
	"errors"
	"strconv"
)

// Sentinel errors, for errors.Is; no error of the package ever contains a
// secret. ErrNotFound is a KeyStore's answer for an unknown digest or ID
// (the middleware answers 401; any other lookup error is a store failure,
// 503). ErrMalformedKey is wrapped by every *FormatError. ErrInvalid is
// wrapped by every error caused by bad input or configuration, whose
// message says what to change. Roll refuses a key that is revoked
// (ErrRevoked), past its expiry or grace (ErrExpired), or already rolled
// (ErrAlreadyRolled).
var (
	ErrNotFound      = errors.New("apikey: key not found")
	ErrMalformedKey  = errors.New("apikey: malformed key")
	ErrInvalid       = errors.New("apikey: invalid input")
	ErrRevoked       = errors.New("apikey: key revoked")
	ErrExpired       = errors.New("apikey: key expired")
	ErrAlreadyRolled = errors.New("apikey: key already rolled")
)

// FormatError says why a credential is malformed, for logs and hooks (never
// a response body); it never contains the credential. Problem is "empty",
// "too_long", "prefix", "length", "alphabet", "checksum", "duplicate" (two
// credentials), "scheme" (not "Bearer <key>") or "escape" (a bad
// %-escape in a query parameter).
type FormatError struct {
	Problem string
}

// Error says which check failed.
func (e *FormatError) Error() string { return "apikey: malformed key: bad " + e.Problem }

// Unwrap makes every FormatError match ErrMalformedKey.
func (e *FormatError) Unwrap() error { return ErrMalformedKey }

// The format checks, as package-level values so that rejecting a
// credential does not allocate.
var (
	errKeyEmpty    = &FormatError{Problem: "empty"}
	errKeyTooLong  = &FormatError{Problem: "too_long"}
	errKeyPrefix   = &FormatError{Problem: "prefix"}
	errKeyLength   = &FormatError{Problem: "length"}
	errKeyAlphabet = &FormatError{Problem: "alphabet"}
	errKeyChecksum = &FormatError{Problem: "checksum"}
	// Problems found before a format is tried.
	errDuplicate = &FormatError{Problem: "duplicate"} // two credentials
	errOversized = &FormatError{Problem: "too_long"}  // a header over 4 KiB
	errScheme    = &FormatError{Problem: "scheme"}    // Authorization is not "Bearer <key>"
	errEscape    = &FormatError{Problem: "escape"}    // a bad %-escape in a query parameter
)

// Reason is the precise cause of a rejection, for Config.Logger and
// Config.OnRejected only: the body never tells whether a key exists.
type Reason uint8

// The reasons a request is rejected. The zero Reason means none.
const (
	ReasonMissing         Reason = iota + 1 // no credential in any configured source
	ReasonMalformed                         // not one credential of a configured format: scheme, duplicate, length, alphabet, checksum
	ReasonEnvironment                       // a key of an environment Config.Environment refuses
	ReasonUnknown                           // no key has this digest
	ReasonRevoked                           // the key was revoked
	ReasonExpired                           // the key is past its expiry
	ReasonRolled                            // the key was rolled and its grace period is over
	ReasonOwner                             // the Config.OwnerHeader header is missing or names another owner
	ReasonScope                             // the key lacks a required scope
	ReasonUnauthenticated                   // Require ran without an authenticated key in the context
	ReasonStoreFailure                      // the store or the limiter failed, timed out or panicked
	ReasonLimited                           // a limit of the key is spent (Config.Limiter)
)

var reasonNames = [...]string{
	0:                     "none",
	ReasonMissing:         "missing",
	ReasonMalformed:       "malformed",
	ReasonEnvironment:     "environment",
	ReasonUnknown:         "unknown",
	ReasonRevoked:         "revoked",
	ReasonExpired:         "expired",
	ReasonRolled:          "rolled",
	ReasonOwner:           "owner",
	ReasonScope:           "scope",
	ReasonUnauthenticated: "unauthenticated",
	ReasonStoreFailure:    "store_failure",
	ReasonLimited:         "limited",
}

// String returns a snake_case word, fit for a metric label.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Status is the reason's HTTP status: 401 for the credential, 403 for
// scope and owner, 429 for a spent limit, 503 for a store fault.
func (r Reason) Status() int {
	switch r {
	case 0:
		return 200
	case ReasonScope, ReasonOwner:
		return 403
	case ReasonStoreFailure:
		return 503
	case ReasonLimited:
		return 429
	}
	return 401
}

// AuthError describes one rejected request (ErrorStyle, OnRejected,
// Logger, Verify), never its credential: the Scope needed, the KeyID when
// the store found the key, the detail in Err.
type AuthError struct {
	Reason    Reason
	RequestID string // "" when request ids are off
	Scope     Scope
	KeyID     string
	Err       error
}

// Error says why, safe to log.
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
