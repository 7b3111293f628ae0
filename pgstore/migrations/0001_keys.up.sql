-- +goose Up
-- Version 1: the keys table.
CREATE TABLE apikey_keys (
	id           text        PRIMARY KEY,
	digest       bytea       NOT NULL,
	pepper_id    text        NOT NULL DEFAULT '',
	name         text        NOT NULL,
	environment  text        NOT NULL CHECK (environment IN ('live', 'test')),
	scopes       text[]      NOT NULL DEFAULT '{}',
	owner        text        NOT NULL DEFAULT '',
	metadata     jsonb,
	hint         text        NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL,
	expires_at   timestamptz,
	revoked_at   timestamptz,
	last_used_at timestamptz,
	requests     bigint      NOT NULL DEFAULT 0,
	rolled_from  text,
	rolled_to    text
);
CREATE UNIQUE INDEX apikey_keys_digest_key ON apikey_keys (digest);
CREATE INDEX apikey_keys_created_idx ON apikey_keys (created_at, id);
CREATE INDEX apikey_keys_owner_idx ON apikey_keys (owner, created_at, id) WHERE owner <> '';
