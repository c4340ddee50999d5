-- Speech: a note's transcript as the model made it ('original') and, when correction was asked
-- for, the grammar-corrected one ('corrected'), with its segments, words and edits.

CREATE TABLE transcripts (
    note_id          TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    version          TEXT NOT NULL CHECK (version IN ('original', 'corrected')),
    model            TEXT NOT NULL,
    language         TEXT NOT NULL,
    duration_seconds DOUBLE PRECISION NOT NULL,
    text             TEXT NOT NULL,
    -- JSON: the segments with their words, and the edits of a corrected transcript.
    body             TEXT NOT NULL,
    -- The text's words folded (lower case, accents removed) by the server, for `q=`.
    search_words     TEXT NOT NULL,
    search           TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', search_words)) STORED,
    PRIMARY KEY (note_id, version)
);

-- `q=` finds notes whose original transcript has every word asked for.
CREATE INDEX transcripts_search ON transcripts USING GIN (search) WHERE version = 'original';

-- Whether the owner asked for correction (at upload with `correct=true`, or later).
ALTER TABLE notes ADD COLUMN correction_asked BIGINT NOT NULL DEFAULT 0;
