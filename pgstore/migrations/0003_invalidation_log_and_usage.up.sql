-- +goose Up
-- Version 3: a durable invalidation log, and usage off the keys table.

-- Every change of apikey_keys, made through the Go API or by plain SQL,
-- writes one row per key (old and new digest) here, in the same
-- transaction, and notifies the channel apikey_invalidate. A replica reads
-- the rows after the last one it applied, so a notification it missed
-- while disconnected is not lost.
CREATE TABLE apikey_invalidations (
	seq    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key_id text        NOT NULL,
	digest bytea       NOT NULL,
	-- The time the row was written, under the writers' lock: pruning
	-- goes by it.
	at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX apikey_invalidations_at_idx ON apikey_invalidations (at);

-- The highest seq that pruning has deleted: a replica whose position is
-- below it missed rows and must forget everything it cached.
CREATE TABLE apikey_invalidations_pruned (
	only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	up_to    bigint  NOT NULL DEFAULT 0
);
INSERT INTO apikey_invalidations_pruned DEFAULT VALUES;

-- +goose StatementBegin
CREATE FUNCTION apikey_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	newest bigint;
BEGIN
	-- Writers of the log take turns until they commit, so rows become
	-- visible in seq order and a reader's position never skips one.
	PERFORM pg_advisory_xact_lock(7021227729055476839);
	SELECT COALESCE(max(seq), 0) INTO newest FROM apikey_invalidations;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO apikey_invalidations (key_id, digest)
			SELECT id, digest FROM new_rows ORDER BY id;
	ELSIF TG_OP = 'UPDATE' THEN
		INSERT INTO apikey_invalidations (key_id, digest)
			SELECT id, digest FROM old_rows UNION SELECT id, digest FROM new_rows ORDER BY 1, 2;
	ELSE
		INSERT INTO apikey_invalidations (key_id, digest)
			SELECT id, digest FROM old_rows ORDER BY id;
	END IF;
	-- Under the lock, the rows after newest are this statement's.
	PERFORM pg_notify('apikey_invalidate', key_id || ':' || encode(digest, 'hex'))
		FROM apikey_invalidations WHERE seq > newest ORDER BY seq;
	RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER apikey_keys_log_insert AFTER INSERT ON apikey_keys
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION apikey_log_change();
CREATE TRIGGER apikey_keys_log_update AFTER UPDATE ON apikey_keys
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION apikey_log_change();
CREATE TRIGGER apikey_keys_log_delete AFTER DELETE ON apikey_keys
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION apikey_log_change();

-- Usage: each flush writes its deltas here under its flush id, once (a
-- retried flush finds its id in apikey_usage_flushes and adds nothing);
-- they are rolled up into apikey_usage. Neither table is referenced by a
-- foreign key, so a flush never waits on a key's row lock, and a
-- revocation never waits on a flush.
CREATE TABLE apikey_usage (
	key_id       text        PRIMARY KEY,
	requests     bigint      NOT NULL DEFAULT 0,
	last_used_at timestamptz
);
INSERT INTO apikey_usage (key_id, requests, last_used_at)
	SELECT id, requests, last_used_at FROM apikey_keys
	WHERE requests <> 0 OR last_used_at IS NOT NULL;
ALTER TABLE apikey_keys DROP COLUMN requests, DROP COLUMN last_used_at;

CREATE TABLE apikey_usage_deltas (
	flush_id     text        NOT NULL,
	key_id       text        NOT NULL,
	requests     bigint      NOT NULL,
	last_used_at timestamptz,
	PRIMARY KEY (flush_id, key_id)
);
CREATE INDEX apikey_usage_deltas_key_idx ON apikey_usage_deltas (key_id);

CREATE TABLE apikey_usage_flushes (
	flush_id text        PRIMARY KEY,
	at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX apikey_usage_flushes_at_idx ON apikey_usage_flushes (at);
