-- A received note's filter columns, copied into its inbox entry beside its sort keys (0003): the
-- received branch of a list checks an entry's copies before it reads the note, so a filter that
-- few received notes pass costs a read of the entries, not one note lookup per entry. The sender
-- filter reads the entry's `sender_id`, which is the note's owner. Triggers fill the copies and
-- keep the folded name and the status current (a note's format never changes).
ALTER TABLE inbox_entries
    ADD COLUMN note_name_folded TEXT,
    ADD COLUMN note_status TEXT,
    ADD COLUMN note_format TEXT;
UPDATE inbox_entries AS i
SET note_name_folded = n.name_folded, note_status = n.status, note_format = n.format
FROM notes AS n
WHERE n.id = i.note_id;

CREATE OR REPLACE FUNCTION inbox_entry_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT created_at, duration_seconds, name, name_folded, status, format
    INTO NEW.note_created_at, NEW.note_duration_seconds, NEW.note_name,
         NEW.note_name_folded, NEW.note_status, NEW.note_format
    FROM notes WHERE id = NEW.note_id;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION note_rename_in_inboxes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inbox_entries SET note_name = NEW.name, note_name_folded = NEW.name_folded
    WHERE note_id = NEW.id;
    RETURN NULL;
END
$$;
DROP TRIGGER notes_rename_in_inboxes ON notes;
CREATE TRIGGER notes_rename_in_inboxes AFTER UPDATE OF name, name_folded ON notes
FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.name_folded IS DISTINCT FROM NEW.name_folded)
EXECUTE FUNCTION note_rename_in_inboxes();

CREATE FUNCTION note_status_in_inboxes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inbox_entries SET note_status = NEW.status WHERE note_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER notes_status_in_inboxes AFTER UPDATE OF status ON notes
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION note_status_in_inboxes();

-- Without statistics on the new columns, the planner takes any condition on them for a rare
-- one, and sorts every entry that passes instead of walking them in the list's order.
ANALYZE inbox_entries;
