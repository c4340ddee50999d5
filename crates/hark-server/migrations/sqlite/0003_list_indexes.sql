-- A list walks the index of its sort order and stops once its page is full. The columns after
-- the order's own let the other filters be checked in the index, without reading each row.
DROP INDEX notes_owner_created;
DROP INDEX notes_owner_duration;
DROP INDEX notes_owner_name;
CREATE INDEX notes_owner_created ON notes (owner_id, created_at, id, duration_seconds, status, format);
CREATE INDEX notes_owner_duration ON notes (owner_id, duration_seconds, id, created_at, status, format);
CREATE INDEX notes_owner_name ON notes (owner_id, name, id, created_at, duration_seconds, status, format);

-- Name substrings of three characters or more are found in a trigram index of the folded names
-- (matched exactly: the names are folded by the server, so the index does no case folding).
-- Its rowid, `name_key`, orders notes as `created_at` does: created_at * 1024, plus a rank
-- among notes of the same microsecond. So a search reads its matches newest (or oldest) first
-- and stops at the end of the page. (A notes rowid would not do: VACUUM may renumber them.)
ALTER TABLE notes ADD COLUMN name_key INTEGER;
UPDATE notes SET name_key = ranked.key
FROM (
    SELECT id, created_at * 1024 + row_number() OVER (PARTITION BY created_at ORDER BY id) - 1 AS key
    FROM notes
) AS ranked
WHERE notes.id = ranked.id;
CREATE UNIQUE INDEX notes_name_key ON notes (name_key);

CREATE VIRTUAL TABLE note_names USING fts5 (
    name_folded,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO note_names (rowid, name_folded) SELECT name_key, name_folded FROM notes;

-- The index follows every insert, rename and delete, whichever statement makes it.
-- `created_at` never changes once a note exists, so neither does its key.
CREATE TRIGGER notes_name_insert AFTER INSERT ON notes
BEGIN
    UPDATE notes SET name_key = coalesce(
        (SELECT max(name_key) + 1 FROM notes
         WHERE name_key BETWEEN NEW.created_at * 1024 AND NEW.created_at * 1024 + 1023),
        NEW.created_at * 1024)
    WHERE id = NEW.id;
    INSERT INTO note_names (rowid, name_folded)
    SELECT name_key, name_folded FROM notes WHERE id = NEW.id;
END;

CREATE TRIGGER notes_name_rename AFTER UPDATE OF name_folded ON notes
BEGIN
    DELETE FROM note_names WHERE rowid = OLD.name_key;
    INSERT INTO note_names (rowid, name_folded) VALUES (NEW.name_key, NEW.name_folded);
END;

CREATE TRIGGER notes_name_delete AFTER DELETE ON notes
BEGIN
    DELETE FROM note_names WHERE rowid = OLD.name_key;
END;

-- A received note's sort keys, copied into its inbox entry: the received branch of a list walks
-- the recipient's entries in the list's order and stops at the end of the page, as the own
-- branch does. Triggers fill the copies and keep the name current (a note's creation time and
-- duration never change).
ALTER TABLE inbox_entries ADD COLUMN note_created_at INTEGER;
ALTER TABLE inbox_entries ADD COLUMN note_duration_seconds REAL;
ALTER TABLE inbox_entries ADD COLUMN note_name TEXT;
UPDATE inbox_entries
SET note_created_at = n.created_at, note_duration_seconds = n.duration_seconds, note_name = n.name
FROM notes AS n
WHERE n.id = inbox_entries.note_id;
CREATE INDEX inbox_entries_created ON inbox_entries (recipient_id, note_created_at, note_id);
CREATE INDEX inbox_entries_duration ON inbox_entries (recipient_id, note_duration_seconds, note_id);
CREATE INDEX inbox_entries_name ON inbox_entries (recipient_id, note_name, note_id);

CREATE TRIGGER inbox_entries_sort_keys AFTER INSERT ON inbox_entries
BEGIN
    UPDATE inbox_entries SET
        note_created_at = (SELECT created_at FROM notes WHERE id = NEW.note_id),
        note_duration_seconds = (SELECT duration_seconds FROM notes WHERE id = NEW.note_id),
        note_name = (SELECT name FROM notes WHERE id = NEW.note_id)
    WHERE recipient_id = NEW.recipient_id AND note_id = NEW.note_id;
END;

CREATE TRIGGER notes_rename_in_inboxes AFTER UPDATE OF name ON notes
BEGIN
    UPDATE inbox_entries SET note_name = NEW.name WHERE note_id = NEW.id;
END;
