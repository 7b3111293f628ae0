// Package manage serves an "API keys" page and its JSON API, for a host
// application to mount so that its own customers create, edit, roll,
// disable and revoke their keys, and see how much each is used.
//
//	h, err := manage.New(store, manage.Config{
//		Keys: keys, // the KeyConfig of the store and the middleware
//		Path: "/settings/api-keys",
//		Caller: func(r *http.Request) (manage.Caller, error) {
//			u, ok := session(r) // the host's own sign-in
//			if !ok {
//				return manage.Caller{}, manage.ErrUnauthenticated
//			}
//			return manage.Caller{ID: u.ID, Owner: u.AccountID}, nil
//		},
//		Audit: manage.NewMemoryAudit(0),
//	})
//	mux.Handle("/settings/api-keys/", h)
//	mux.Handle("/settings/api-keys", h)
//
// # Tenancy
//
// Config.Caller says who asks and whose keys they manage: a tenant sees
// and changes the keys whose Owner is its Caller.Owner, and another
// owner's key is "not found" to it (404, never 403); an operator
// (Caller.Operator) manages every owner's keys. A tenant's new keys are
// always its own.
//
// # Limits
//
// A key's limits (apikey.Limit: rates, quotas, credits) are what the
// customer's plan pays for: only an operator sets them, when creating a
// key or later; a tenant that tries is refused (403, code forbidden) but
// reads them. The key's page and GET {Path}/api/keys/{id}/limits show its
// effective limits, its environment's defaults with its own laid over
// them, and what remains of each until when, from Config.Limits (the
// limiter the middleware enforces them with); without it, the key's own
// limits alone. On the page an operator writes the key's own limits a
// line each:
//
//	requests: 100 per minute, burst 200
//	monthly: 10000 per month in America/New_York, shared by owner
//	render: 500 credits per month
//	search: unlimited
//
// "per" a duration (second, minute, hour, or as time.ParseDuration reads
// it) is a rate; per day or month a calendar quota, in UTC unless "in" a
// time zone; credits without "per" are never refilled; unlimited lifts
// the environment's default of that name; "shared by owner" counts a
// limit over all of the owner's keys. The JSON API writes a limit as an
// object, its Per in seconds: {"name": "requests", "kind": "rate",
// "count": 100, "per_seconds": 60, "burst": 200}.
//
// # The page
//
// GET {Path}/ lists the keys with their usage; {Path}/new creates one and
// shows its secret once, with a button that copies it; {Path}/keys/{id}
// shows a key's limits, edits its name, scopes, expiry and (an operator)
// limits, rolls it (the old key keeps working for a grace period, 24 h by
// default), disables or enables it, and revokes it after a confirmation.
// It is rendered on the server (html/template), works without JavaScript
// but for the copy button, and fits a phone's screen.
//
// # The JSON API
//
// Under {Path}/api/: GET and POST keys, GET and PATCH keys/{id}, POST
// keys/{id}/roll, /revoke, /disable, /enable, GET keys/{id}/usage and
// /limits, GET usage, GET audit; GET openapi.json describes them all
// (OpenAPI 3.1). Errors other than 401 and the caller's 403 (written by
// Config.Style, as the protected API writes them) are RFC 9457
// problem+json with a "code": 400 invalid_request, 403 forbidden or
// cross_origin, 404 not_found, 405 method_not_allowed, 409 revoked,
// rolled or expired, 413 too_large, 500 internal, 503 unavailable (the
// limiter failed).
//
// # Browser safety
//
// Every state-changing request, page or API, passes Go's
// http.CrossOriginProtection: a cross-origin browser request is refused
// (403) while requests that carry neither Origin nor Sec-Fetch-Site, as
// API clients send them, pass. Every response carries a strict
// Content-Security-Policy (no inline script or style), nosniff,
// Referrer-Policy: no-referrer and, but for the static assets,
// Cache-Control: no-store. A secret is written in the one response that
// creates it and is kept nowhere.
//
// # Audit
//
// Every create, update, roll, revoke, disable and enable is recorded as
// an Event in Config.Audit after it is done: a sink that fails is logged
// to Config.Logger, and the action stands. NewMemoryAudit keeps the
// newest events and lets the JSON API serve them; NewSlogAudit writes one
// log line per event.
package manage
