package leak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
)

// The headers of a report. GitHub spells them GITHUB-PUBLIC-KEY-…; HTTP
// header names are case-insensitive and Go keeps them in this form.
const (
	HeaderKeyID     = "Github-Public-Key-Identifier"
	HeaderSignature = "Github-Public-Key-Signature"
)

// Limits on the headers, well above what GitHub sends (a 64-character
// identifier, a signature of at most 72 bytes).
const (
	maxKeyIDLength     = 128
	maxSignatureLength = 256
)

// Why a report is not believed (401). None names a secret.
var (
	errNoSignature  = errors.New("leak: the report has no single " + HeaderKeyID + " and " + HeaderSignature + " header")
	errBadKeyID     = errors.New("leak: the key identifier is not 1 to 128 visible ASCII characters")
	errBadEncoding  = errors.New("leak: the signature is not base64")
	errBadSignature = errors.New("leak: the signature does not match the body")
)

// signatureHeaders reads the key identifier and the signature of a report.
// Each must appear once.
func signatureHeaders(h http.Header) (string, []byte, error) {
	ids, sigs := h.Values(HeaderKeyID), h.Values(HeaderSignature)
	if len(ids) != 1 || len(sigs) != 1 || ids[0] == "" || sigs[0] == "" {
		return "", nil, errNoSignature
	}
	id, s := ids[0], sigs[0]
	if !visibleASCII(id, maxKeyIDLength) {
		return "", nil, errBadKeyID
	}
	if len(s) > maxSignatureLength {
		return "", nil, errBadEncoding
	}
	sig, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", nil, errBadEncoding
	}
	return id, sig, nil
}

// verifySignature checks sig, an ASN.1 DER ECDSA signature, over the
// SHA-256 of the raw body, with the key src has for id
// (ECDSA-NIST-P256V1-SHA256).
func verifySignature(ctx context.Context, src KeySource, id string, sig, body []byte) error {
	pub, err := src.PublicKey(ctx, id)
	switch {
	case err != nil:
		return err
	case pub == nil:
		return fmt.Errorf("leak: Config.KeySource returned no key for %q and no error", id)
	case pub.Curve != elliptic.P256():
		return fmt.Errorf("leak: Config.KeySource's key %q is not a P-256 key", id)
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return errBadSignature
	}
	return nil
}

// visibleASCII reports whether s is 1 to max characters of '!' to '~'.
func visibleASCII(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
