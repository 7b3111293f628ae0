// Package legacy keeps API keys issued by another system working, verified
// through that system's stored hash, and moves each one to this library's
// own digest the first time it is used.
//
// Export the old keys as Records (a JSON line each: ReadRecords), give them
// to New with the store, and hand Verifier.Fallback to the middleware:
//
//	records, err := legacy.ReadRecords(file)
//	v, err := legacy.New(store, legacy.Config{Keys: keys, Records: records})
//	mw, err := apikey.New(apikey.Config{Keys: keys, Store: store, Fallback: v.Fallback})
//
// The middleware asks Fallback only about credentials none of its formats
// accepts. Fallback then
//
//  1. looks the credential's digest (KeyConfig.Digest) up in the store: a key
//     migrated before, by this process or another replica, costs what any
//     key costs;
//  2. finds the one record the credential can belong to without any slow
//     hash: by the record's lookup prefix for the password hashes (bcrypt,
//     Argon2id, PBKDF2), by the unsalted digest itself for the fast ones
//     (djangorestframework-api-key's SHA-512, Unkey's SHA-256, plaintext). A
//     credential no record can match is refused (apikey.ErrNotFound, 401)
//     at the cost of a map lookup, so a flood of random keys never reaches
//     a slow hash;
//  3. runs at most one slow verification per request, within
//     Config.MaxSlowPerSecond across the process: beyond it the request is
//     refused at once with ErrBusy (the middleware answers 503 with
//     Retry-After), never queued;
//  4. on success files the key under this library's digest (the store's
//     Add), forgets the record, and returns the key: from then on the key
//     costs what any key costs, and the middleware checks its state,
//     scopes and environment as usual.
//
// Remaining tells how many keys each scheme still holds: once a scheme's
// count is 0 its records, and this package, can go. Stats counts
// migrations, slow verifications and refusals.
//
// # Schemes
//
//   - "bcrypt": a modular-crypt bcrypt hash ($2a$, $2b$, $2y$), as written
//     by Apache htpasswd -B, PHP password_hash, Devise, bcrypt libraries.
//   - "argon2id": a PHC string $argon2id$v=19$m=…,t=…,p=…$salt$hash
//     (argon2-cffi, passlib, libsodium), or Django's Argon2PasswordHasher
//     encoding argon2$argon2id$….
//   - "django-pbkdf2-sha256": Django's PBKDF2PasswordHasher,
//     pbkdf2_sha256$iterations$salt$hash.
//   - "drf-api-key": djangorestframework-api-key's keys "prefix.secret".
//     Version 3.0 and later store sha512$$<hex SHA-512 of the whole key>
//     (its Sha512ApiKeyHasher); versions 1.4 to 2.3 stored Django's password
//     hash of the whole key (pbkdf2_sha256$… or argon2$argon2id$…), both
//     accepted. Record.Prefix is the prefix column (the part before the
//     dot).
//   - "unkey-sha256-base64": Unkey's hash, the standard base64 of the
//     SHA-256 of the key.
//   - "plaintext": the key itself, compared in constant time (only its
//     SHA-256 is kept in memory).
//
// Nothing this package returns or logs contains a credential or a hash.
package legacy
