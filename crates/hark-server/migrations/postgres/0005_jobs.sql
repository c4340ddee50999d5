-- Processing: one job per step of a note's pipeline, claimed by workers with a lease; what the
-- steps made (renditions, waveform, loudness) kept beside the note.

CREATE TABLE jobs (
    note_id          TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    step             TEXT NOT NULL
        CHECK (step IN ('integrity', 'transcode', 'waveform', 'loudness', 'transcribe', 'correct')),
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'skipped')),
    -- Starts in this run of the pipeline (a reprocess starts a new run at 0).
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    -- A queued job is not claimed before this instant (a retry's backoff).
    run_after        BIGINT NOT NULL,
    -- The claim that runs the job and until when; a job whose lease expired is claimed again,
    -- and a worker that lost its lease cannot record a result.
    lease_id         TEXT,
    lease_expires_at BIGINT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (note_id, step)
);
CREATE INDEX jobs_queued ON jobs (run_after) WHERE status = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE status = 'running';

-- Derived audio, stored as blobs like originals (content-addressed, reference-counted).
CREATE TABLE renditions (
    note_id          TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    name             TEXT NOT NULL CHECK (name IN ('opus', 'mp3', 'corrected')),
    sha256           TEXT NOT NULL,
    mime             TEXT NOT NULL,
    duration_seconds DOUBLE PRECISION NOT NULL,
    size_bytes       BIGINT NOT NULL,
    PRIMARY KEY (note_id, name)
);
CREATE INDEX renditions_sha256 ON renditions (sha256);

CREATE TABLE waveforms (
    note_id TEXT PRIMARY KEY REFERENCES notes (id) ON DELETE CASCADE,
    -- JSON: peaks, per_second, bars, and min/max pairs for the audiowaveform shape.
    data    TEXT NOT NULL
);

-- What a note's view shows of its processing, kept on its row so a read needs no join:
-- the renditions as JSON (the renditions table holds their blob references), and loudness.
ALTER TABLE notes ADD COLUMN renditions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE notes ADD COLUMN loudness_lufs DOUBLE PRECISION;
ALTER TABLE notes ADD COLUMN true_peak_dbtp DOUBLE PRECISION;
