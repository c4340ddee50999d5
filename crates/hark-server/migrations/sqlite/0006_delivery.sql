-- Channels (delivery jobs): named groups whose creator manages the members. Sending to a
-- channel delivers to its creator and members, the sender aside.
CREATE TABLE channels (
    name       TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX channels_creator ON channels (creator_id);

CREATE TABLE channel_members (
    channel  TEXT NOT NULL REFERENCES channels (name) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (channel, user_id)
);
CREATE INDEX channel_members_user ON channel_members (user_id);

-- The seq of the note.received event that made an inbox entry: the inbox's cursor, so a
-- reader resumes where the event log does, without gaps.
ALTER TABLE inbox_entries ADD COLUMN seq INTEGER;
CREATE INDEX inbox_entries_recipient_seq ON inbox_entries (recipient_id, seq);
