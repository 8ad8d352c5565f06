-- kanband schema, version 3: durable notification subscriptions.

-- A gateway's subscription to a task's terminal events. `cursor` is the highest event id its
-- notifier acknowledged; everything above it that matches is delivered again until acked.
CREATE TABLE subscriptions (
    id            TEXT PRIMARY KEY,
    task_id       TEXT NOT NULL,
    platform      TEXT NOT NULL DEFAULT '',
    chat_id       TEXT NOT NULL DEFAULT '',
    thread_id     TEXT NOT NULL DEFAULT '',
    owner_profile TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('every', 'final')),
    cursor        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    removed_at    INTEGER
) STRICT;
CREATE INDEX subscriptions_owner ON subscriptions (owner_profile) WHERE removed_at IS NULL;
CREATE INDEX subscriptions_task ON subscriptions (task_id) WHERE removed_at IS NULL;
