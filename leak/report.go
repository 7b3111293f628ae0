package leak

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// match is one secret GitHub found: the token, the token type the partner
// registered, the public URL where it was found (maybe empty) and where
// on GitHub ("content", "commit", "pull_request_comment", "npm", …).
type match struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

var errNotArray = errors.New("leak: the report is not a JSON array")

// parseReport reads a report's body: a JSON array of matches. Matches
// without a token are dropped, and a token reported more than once is
// kept once, at its first place, with its first type, URL and source.
// Unknown fields are ignored.
func parseReport(body []byte) ([]match, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		return nil, errNotArray
	}
	var all []match
	if err := json.Unmarshal(body, &all); err != nil {
		return nil, fmt.Errorf("leak: the report is not an array of matches: %w", err)
	}
	seen := make(map[string]struct{}, len(all))
	out := all[:0]
	for _, m := range all {
		if m.Token == "" {
			continue
		}
		if _, dup := seen[m.Token]; dup {
			continue
		}
		seen[m.Token] = struct{}{}
		out = append(out, m)
	}
	return out, nil
}

// The labels of an answer.
const (
	labelTrue  = "true_positive"
	labelFalse = "false_positive"
)

// answer is the partner's verdict on one token, in GitHub's feedback
// format: the token itself (token_raw) or its SHA-256 in lowercase hex
// (token_hash), never both.
type answer struct {
	TokenRaw  string `json:"token_raw,omitempty"`
	TokenHash string `json:"token_hash,omitempty"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// newAnswer labels m's token, by hash unless raw.
func newAnswer(m match, ours, raw bool) answer {
	a := answer{TokenType: m.Type, Label: labelFalse}
	if ours {
		a.Label = labelTrue
	}
	if raw {
		a.TokenRaw = m.Token
	} else {
		a.TokenHash = TokenHash(m.Token)
	}
	return a
}

// TokenHash is the token_hash of an answer: the SHA-256 of the token in
// lowercase hex, the form GitHub accepts instead of the token.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
