-- +goose Up
-- Version 2: when a key was rolled, so that a retired key stays retired
-- whatever the clock does. A key rolled before this version was rolled
-- when its successor was created.
ALTER TABLE apikey_keys ADD COLUMN rolled_at timestamptz;
UPDATE apikey_keys o SET rolled_at = n.created_at
	FROM apikey_keys n WHERE o.rolled_to = n.id AND o.rolled_at IS NULL;
