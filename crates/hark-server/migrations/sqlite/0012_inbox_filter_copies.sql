-- A received note's filter columns, copied into its inbox entry beside its sort keys (0003): the
-- received branch of a list checks an entry's copies before it reads the note, so a filter that
-- few received notes pass costs a read of the entries, not one note lookup per entry. The sender
-- filter reads the entry's `sender_id`, which is the note's owner. Triggers fill the copies and
-- keep the folded name and the status current (a note's format never changes).
ALTER TABLE inbox_entries ADD COLUMN note_name_folded TEXT;
ALTER TABLE inbox_entries ADD COLUMN note_status TEXT;
ALTER TABLE inbox_entries ADD COLUMN note_format TEXT;
UPDATE inbox_entries
SET note_name_folded = n.name_folded, note_status = n.status, note_format = n.format
FROM notes AS n
WHERE n.id = inbox_entries.note_id;

DROP TRIGGER inbox_entries_sort_keys;
CREATE TRIGGER inbox_entries_sort_keys AFTER INSERT ON inbox_entries
BEGIN
    UPDATE inbox_entries SET
        (note_created_at, note_duration_seconds, note_name, note_name_folded, note_status,
         note_format) =
        (SELECT created_at, duration_seconds, name, name_folded, status, format
         FROM notes WHERE id = NEW.note_id)
    WHERE recipient_id = NEW.recipient_id AND note_id = NEW.note_id;
END;

DROP TRIGGER notes_rename_in_inboxes;
CREATE TRIGGER notes_rename_in_inboxes AFTER UPDATE OF name, name_folded ON notes
BEGIN
    UPDATE inbox_entries SET note_name = NEW.name, note_name_folded = NEW.name_folded
    WHERE note_id = NEW.id;
END;

CREATE TRIGGER notes_status_in_inboxes AFTER UPDATE OF status ON notes
WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE inbox_entries SET note_status = NEW.status WHERE note_id = NEW.id;
END;
