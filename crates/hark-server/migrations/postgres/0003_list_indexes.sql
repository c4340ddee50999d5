-- A list walks the index of its sort order and stops once its page is full. The key columns
-- after the order's own let the other filters be checked in the index (as index conditions),
-- without reading each row.
DROP INDEX notes_owner_created;
DROP INDEX notes_owner_duration;
DROP INDEX notes_owner_name;
CREATE INDEX notes_owner_created ON notes (owner_id, created_at, id, duration_seconds, status, format);
CREATE INDEX notes_owner_duration ON notes (owner_id, duration_seconds, id, created_at, status, format);
CREATE INDEX notes_owner_name ON notes (owner_id, name, id, created_at, duration_seconds, status, format);

-- Name substrings are found in a trigram index of the folded names.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX notes_name_trigrams ON notes USING gin (name_folded gin_trgm_ops);
