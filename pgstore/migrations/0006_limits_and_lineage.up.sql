-- +goose Up
-- Version 6: each key's own limits, and the roll chain it belongs to.

-- limits is the key's []apikey.Limit as a JSON array, NULL when it has
-- none. lineage is the ID of the first key of its roll chain, NULL for
-- that first key: limits count per lineage, so a successor goes on with
-- its predecessor's counters. The log triggers of version 3 fire on every
-- UPDATE of apikey_keys, whatever the columns, so a change of a key's
-- limits reaches every replica as any other change does.
ALTER TABLE apikey_keys
	ADD COLUMN limits  jsonb CHECK (jsonb_typeof(limits) = 'array'),
	ADD COLUMN lineage text;

-- Successors made before this version: their lineage is the first key of
-- their chain, found by following rolled_from up to a key that was not
-- rolled from another (or is gone). A chain that loops has no first key
-- and is left alone.
WITH RECURSIVE up (id, ancestor) AS (
	SELECT id, rolled_from FROM apikey_keys WHERE COALESCE(rolled_from, '') <> ''
	UNION
	SELECT up.id, p.rolled_from FROM up JOIN apikey_keys p ON p.id = up.ancestor
		WHERE COALESCE(p.rolled_from, '') <> ''
)
UPDATE apikey_keys k SET lineage = up.ancestor
	FROM up
	WHERE k.id = up.id AND k.lineage IS NULL
	AND NOT EXISTS (SELECT 1 FROM apikey_keys p WHERE p.id = up.ancestor AND COALESCE(p.rolled_from, '') <> '');
