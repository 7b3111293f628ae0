-- +goose Up
-- Version 4: keys that can be switched off and on, and an audit log of
-- management actions.
ALTER TABLE apikey_keys ADD COLUMN disabled boolean NOT NULL DEFAULT false;

-- One row per management action (create, update, roll, revoke, disable,
-- enable): who, what, which key, when, from which address. Never a secret.
CREATE TABLE apikey_audit (
	seq    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at     timestamptz NOT NULL,
	actor  text        NOT NULL,
	action text        NOT NULL,
	key_id text        NOT NULL DEFAULT '',
	owner  text        NOT NULL DEFAULT '',
	remote text        NOT NULL DEFAULT '',
	detail text        NOT NULL DEFAULT ''
);
CREATE INDEX apikey_audit_owner_idx ON apikey_audit (owner, seq);
CREATE INDEX apikey_audit_key_idx ON apikey_audit (key_id, seq);
