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

-- A received note's sort keys, copied into its inbox entry: the received branch of a list walks
-- the recipient's entries in the list's order and stops at the end of the page, as the own
-- branch does. Triggers fill the copies and keep the name current (a note's creation time and
-- duration never change).
ALTER TABLE inbox_entries
    ADD COLUMN note_created_at BIGINT,
    ADD COLUMN note_duration_seconds DOUBLE PRECISION,
    ADD COLUMN note_name TEXT COLLATE "C";
UPDATE inbox_entries AS i
SET note_created_at = n.created_at, note_duration_seconds = n.duration_seconds, note_name = n.name
FROM notes AS n
WHERE n.id = i.note_id;
CREATE INDEX inbox_entries_created ON inbox_entries (recipient_id, note_created_at, note_id);
CREATE INDEX inbox_entries_duration ON inbox_entries (recipient_id, note_duration_seconds, note_id);
CREATE INDEX inbox_entries_name ON inbox_entries (recipient_id, note_name, note_id);

CREATE FUNCTION inbox_entry_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT created_at, duration_seconds, name
    INTO NEW.note_created_at, NEW.note_duration_seconds, NEW.note_name
    FROM notes WHERE id = NEW.note_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER inbox_entries_sort_keys BEFORE INSERT ON inbox_entries
FOR EACH ROW EXECUTE FUNCTION inbox_entry_sort_keys();

CREATE FUNCTION note_rename_in_inboxes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inbox_entries SET note_name = NEW.name WHERE note_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER notes_rename_in_inboxes AFTER UPDATE OF name ON notes
FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION note_rename_in_inboxes();
