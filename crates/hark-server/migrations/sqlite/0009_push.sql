-- Web Push: a user's browsers, each a push service endpoint with the browser's keys. A
-- browser that subscribes again (new keys, same endpoint) keeps its row. `after_seq` is the
-- event log's end when it was made: it gets only events after it.
CREATE TABLE push_subscriptions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint   TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    after_seq  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, endpoint)
);

-- One event to push to one subscription, made by the push dispatcher from the event log; the
-- outcome of its latest attempt is kept with it. A push service that says the subscription is
-- gone deletes it, and its messages with it.
CREATE TABLE push_messages (
    subscription_id  TEXT NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_id         TEXT,
    lease_expires_at INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    PRIMARY KEY (subscription_id, seq)
);
CREATE INDEX push_messages_pending ON push_messages (next_attempt_at) WHERE status = 'pending';

-- The push dispatcher starts at the log's end as it is now: no subscription exists before it.
INSERT INTO consumer_positions (name, seq) SELECT 'push', COALESCE(MAX(seq), 0) FROM events;
