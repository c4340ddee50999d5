-- Users, API keys, blobs, notes, idempotency keys, inbox entries and the event log.
-- Instants are microseconds since the Unix epoch; ids are hyphenated UUIDs.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

-- One row per distinct content; notes share a blob by reference count.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size_bytes  INTEGER NOT NULL,
    refcount    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    orphaned_at INTEGER
);
CREATE INDEX blobs_orphaned ON blobs (orphaned_at) WHERE refcount = 0;

CREATE TABLE notes (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL REFERENCES users (id),
    -- Byte order on every backend, so a name sort and its cursor agree everywhere.
    name             TEXT NOT NULL,
    -- The name lower-cased by the server (Unicode-aware; SQLite's lower() folds ASCII only).
    name_folded      TEXT NOT NULL,
    title            TEXT,
    series           TEXT,
    format           TEXT NOT NULL,
    codec            TEXT NOT NULL,
    mime             TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    sample_rate      INTEGER NOT NULL,
    channels         INTEGER NOT NULL,
    bitrate          INTEGER NOT NULL,
    size_bytes       INTEGER NOT NULL,
    sha256           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    failure_reason   TEXT,
    tags             TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX notes_owner_created ON notes (owner_id, created_at, id);
CREATE INDEX notes_owner_duration ON notes (owner_id, duration_seconds, id);
CREATE INDEX notes_owner_name ON notes (owner_id, name, id);
CREATE INDEX notes_sha256 ON notes (sha256);

CREATE TABLE idempotency_keys (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    note_id    TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
-- Keys are kept for a day (the maintenance loop prunes older ones).
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE inbox_entries (
    recipient_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    note_id      TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    sender_id    TEXT NOT NULL,
    channel      TEXT,
    delivered_at INTEGER NOT NULL,
    listened_at  INTEGER,
    PRIMARY KEY (recipient_id, note_id)
);
CREATE INDEX inbox_entries_note ON inbox_entries (note_id);

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    note_id    TEXT,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE event_audience (
    user_id TEXT NOT NULL,
    seq     INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    PRIMARY KEY (user_id, seq)
);
