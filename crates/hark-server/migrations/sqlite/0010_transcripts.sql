-- Speech: a note's transcript as the model made it ('original') and, when correction was asked
-- for, the grammar-corrected one ('corrected'), with its segments, words and edits.

CREATE TABLE transcripts (
    note_id          TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    version          TEXT NOT NULL CHECK (version IN ('original', 'corrected')),
    model            TEXT NOT NULL,
    language         TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    text             TEXT NOT NULL,
    -- JSON: the segments with their words, and the edits of a corrected transcript.
    body             TEXT NOT NULL,
    -- The text's words folded (lower case, accents removed) by the server, for `q=`.
    search_words     TEXT NOT NULL,
    PRIMARY KEY (note_id, version)
);

-- `q=` finds notes whose original transcript has every word asked for. Rows are keyed by the
-- note's `name_key` (stable, unlike a rowid of `transcripts`), so a note's row is found directly.
CREATE VIRTUAL TABLE transcript_words USING fts5 (
    words,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER transcripts_words_insert AFTER INSERT ON transcripts WHEN NEW.version = 'original'
BEGIN
    INSERT INTO transcript_words (rowid, words)
    SELECT name_key, NEW.search_words FROM notes WHERE id = NEW.note_id;
END;

CREATE TRIGGER transcripts_words_delete AFTER DELETE ON transcripts WHEN OLD.version = 'original'
BEGIN
    DELETE FROM transcript_words
    WHERE rowid = (SELECT name_key FROM notes WHERE id = OLD.note_id);
END;

-- A deleted note's transcripts go by cascade, after its row: its key is known here.
CREATE TRIGGER notes_transcript_words_delete AFTER DELETE ON notes
BEGIN
    DELETE FROM transcript_words WHERE rowid = OLD.name_key;
END;

-- Whether the owner asked for correction (at upload with `correct=true`, or later).
ALTER TABLE notes ADD COLUMN correction_asked INTEGER NOT NULL DEFAULT 0;
