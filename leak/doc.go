// Package leak acts on API keys that leaked in public: it is the endpoint
// of GitHub's secret scanning partner program. GitHub scans public
// repositories, gists, issues, pull requests and npm packages for the
// regular expressions of its partners and POSTs every match to the
// partner's endpoint; this handler checks the report's signature, finds
// each token among the keys of the store, applies the policy (revoke,
// roll, disable or just notify) to the leaked ones and answers GitHub
// which tokens were real.
//
//	h, err := leak.New(store, leak.Config{
//		Keys:   keys, // the KeyConfig of the store and the middleware
//		Policy: map[apikey.Environment]leak.Action{apikey.EnvTest: leak.Notify},
//		Audit:  audit, // the manage.AuditSink of the API Keys page
//		OnLeak: func(ctx context.Context, f leak.Finding) { mailOwner(ctx, f) },
//	})
//	mux.Handle("POST /github/secret-scanning", h)
//
// # Joining the program
//
// Write to secret-scanning@github.com with, for each format of
// KeyConfig.Formats, a token type name, the regular expression of its keys
// and the URL of the handler:
//
//	token type:  keygate_api_key
//	pattern:     apikey.FormatDefault.Pattern()
//	endpoint:    https://api.example.com/github/secret-scanning
//
// Pattern matches a key with its surroundings; the key is its first
// submatch. Its prefix, length and alphabet make it precise; a format with
// a checksum (FormatDefault's) lets the handler turn away most false
// matches offline. The same pattern serves a pre-commit hook (see the
// example).
//
// # The report
//
// GitHub POSTs a JSON array of matches, {"token", "type", "url",
// "source"}, signed: Github-Public-Key-Identifier names one of the keys
// published at GitHubKeysURL, Github-Public-Key-Signature is the base64
// of an ASN.1 ECDSA P-256 signature over the SHA-256 of the raw body.
// Config.KeySource gives that key (GitHubKeys fetches and caches them;
// StaticKeys holds fixed ones). The handler answers 200 and a JSON array
// with one verdict per distinct token: {"token_hash": SHA-256 of the
// token in lowercase hex, "token_type", "label": "true_positive" or
// "false_positive"} (token_raw, the token itself, with
// Config.AnswerRaw).
//
// A report without one of each header, with an identifier the key source
// does not know (after one refresh) or a signature that does not match is
// refused, 401, before its body is parsed; a body over Config.MaxBody is
// 413, a body that is not a JSON array 400, another method than POST
// 405. No key is touched then.
//
// # What is ours
//
// A token is checked as the middleware checks a credential
// (Middleware.Verify): a token none of Keys.Formats accepts (prefix,
// length, alphabet, checksum) is a false positive without a store call; a
// well-formed one costs one Lookup per pepper. A token the store knows is
// a true positive whatever its key's state; the policy applies to a key
// that works or could work again, active or disabled.
//
// # Replays
//
// GitHub may deliver a report again. A Handler serializes its actions on
// one key and reads the key afresh first: a revoked key is not revoked
// again, a rolled one not rolled again, a disabled one not disabled again,
// so a replay answers the same and records nothing; Notify, which leaves
// no trace on the key, notifies again. Across replicas the store keeps
// the key's state right (Revoke is idempotent, a second Roll is refused),
// but two replicas handling one report at the same instant may both
// record an event. A store failure on any token
// answers 503 (Retry-After) for the whole report, so that GitHub sends it
// again: what was done before the failure is not done twice.
//
// # Secrets
//
// No answer, log line, audit event or Finding holds a reported token;
// the URL and source, kept in Event.Detail and Finding, have it replaced
// by [REDACTED] should they contain it. After Roll, Finding carries the
// successor's secret (apikey.Secret, which prints as [REDACTED]) for
// OnLeak to hand to the key's owner.
package leak
