-- A list filtered by a channel with few deliveries starts from them (the viewer's own notes
-- among them) instead of checking every note.
CREATE INDEX inbox_entries_channel ON inbox_entries (channel, note_id);
