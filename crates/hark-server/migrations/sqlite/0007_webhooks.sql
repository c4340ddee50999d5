-- Webhooks: a user's endpoints, each with the event types it wants and the secret its
-- deliveries are signed with. `after_seq` is the event log's end when it was made: it gets
-- only events after it.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    after_seq  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_user ON webhooks (user_id);

CREATE TABLE webhook_event_types (
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    PRIMARY KEY (webhook_id, event_type)
);

-- One event to deliver to one webhook, made by the dispatcher from the event log. A webhook's
-- pending deliveries go out in `seq` order: only its oldest pending one is ever claimed, by one
-- sender at a time (the lease).
CREATE TABLE webhook_deliveries (
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_id         TEXT,
    lease_expires_at INTEGER,
    PRIMARY KEY (webhook_id, seq)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';

-- Every attempt, with what came of it.
CREATE TABLE webhook_attempts (
    webhook_id      TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    status_code     INTEGER,
    error           TEXT,
    attempted_at    INTEGER NOT NULL,
    next_attempt_at INTEGER,
    state           TEXT NOT NULL CHECK (state IN ('delivered', 'retrying', 'dead')),
    PRIMARY KEY (webhook_id, seq, attempt),
    FOREIGN KEY (webhook_id, seq) REFERENCES webhook_deliveries (webhook_id, seq) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_recent ON webhook_attempts (webhook_id, attempted_at);

-- How far a consumer of the event log has durably read. The webhook dispatcher starts at the
-- log's end as it is now: no webhook exists before it.
CREATE TABLE consumer_positions (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
INSERT INTO consumer_positions (name, seq) SELECT 'webhooks', COALESCE(MAX(seq), 0) FROM events;
