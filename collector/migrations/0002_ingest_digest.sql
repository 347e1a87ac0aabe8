-- A batch's idempotency key is kept with what it was used for: the SHA-256 (hex) of the
-- batch's kind and items. A key sent again with other items, or for another kind, is a
-- conflict, not a repeat. Rows stored before this column have no digest (NULL): a repeat of
-- the same kind is taken as a repeat, as before.
ALTER TABLE ingest_batches ADD COLUMN digest TEXT;
