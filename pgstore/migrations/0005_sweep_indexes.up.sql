-- +goose Up
-- Version 5: what Store.Candidates needs to select, by index, the keys
-- package sweep looks at: those that expire soon, that nobody used for
-- long, or that are old, without reading every key.

-- Keys that can expire: the range of expiries within the warning window.
CREATE INDEX apikey_keys_expires_idx ON apikey_keys (expires_at)
	WHERE revoked_at IS NULL AND expires_at IS NOT NULL;

-- Every key has a usage row from its creation on, with idle_since: its
-- last use, or its creation if it was never used. "Unused since" is then
-- one index range, never used keys included.
ALTER TABLE apikey_usage ADD COLUMN idle_since timestamptz;
UPDATE apikey_usage u SET idle_since = COALESCE(u.last_used_at, k.created_at)
	FROM apikey_keys k WHERE k.id = u.key_id;
UPDATE apikey_usage SET idle_since = COALESCE(last_used_at, now()) WHERE idle_since IS NULL;
INSERT INTO apikey_usage (key_id, requests, last_used_at, idle_since)
	SELECT k.id, 0, NULL, k.created_at FROM apikey_keys k
	WHERE NOT EXISTS (SELECT 1 FROM apikey_usage u WHERE u.key_id = k.id);
ALTER TABLE apikey_usage ALTER COLUMN idle_since SET NOT NULL;
CREATE INDEX apikey_usage_idle_idx ON apikey_usage (idle_since);

-- +goose StatementBegin
CREATE FUNCTION apikey_usage_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO apikey_usage (key_id, requests, last_used_at, idle_since)
		SELECT id, 0, NULL, created_at FROM new_rows
		ON CONFLICT (key_id) DO NOTHING;
	RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER apikey_keys_usage_row AFTER INSERT ON apikey_keys
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION apikey_usage_row();

-- Keys the sweep disabled and has yet to tell their owner of: a record
-- under "sweep.disabled-unused" that is pending or to retry (package
-- sweep's format: more than "<time> <key id>"). Almost always empty.
CREATE INDEX apikey_keys_sweep_retry_idx ON apikey_keys (id)
	WHERE disabled AND revoked_at IS NULL AND (metadata ->> 'sweep.disabled-unused') LIKE '% % %';
