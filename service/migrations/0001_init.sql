-- kanband schema, version 1. Times are Unix milliseconds from the server's wall clock.

CREATE TABLE boards (
    slug             TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    metadata         TEXT NOT NULL DEFAULT '{}',   -- JSON object of strings
    default_assignee TEXT NOT NULL DEFAULT '',
    max_retries      INTEGER NOT NULL DEFAULT 0,   -- 0: the service default
    max_running      INTEGER NOT NULL DEFAULT 0,   -- 0: no cap
    archived         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

INSERT INTO boards (slug, display_name, created_at, updated_at)
VALUES ('default', 'default', CAST(unixepoch('subsec') * 1000 AS INTEGER),
        CAST(unixepoch('subsec') * 1000 AS INTEGER));

CREATE TABLE tasks (
    id                    TEXT PRIMARY KEY,
    board                 TEXT NOT NULL REFERENCES boards (slug),
    title                 TEXT NOT NULL,
    body                  TEXT NOT NULL DEFAULT '',
    assignee              TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL CHECK (status IN ('triage', 'todo', 'scheduled', 'ready',
                              'running', 'blocked', 'review', 'done', 'archived')),
    priority              INTEGER NOT NULL DEFAULT 0,
    created_by            TEXT NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    started_at            INTEGER,
    completed_at          INTEGER,
    tenant                TEXT NOT NULL DEFAULT '',
    idempotency_key       TEXT,
    result                TEXT NOT NULL DEFAULT '',
    summary               TEXT NOT NULL DEFAULT '',
    workspace_kind        TEXT NOT NULL DEFAULT 'scratch',
    workspace_path        TEXT NOT NULL DEFAULT '',
    workspace_branch      TEXT NOT NULL DEFAULT '',
    max_runtime_seconds   INTEGER NOT NULL DEFAULT 0,
    max_retries           INTEGER NOT NULL DEFAULT 0,
    required_capabilities TEXT NOT NULL DEFAULT '[]',  -- JSON array, sorted and unique
    target_machine        TEXT NOT NULL DEFAULT '',
    worker_options        TEXT NOT NULL DEFAULT '{}',  -- JSON object, opaque to kanband
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    last_failure_error    TEXT NOT NULL DEFAULT '',
    block_kind            TEXT,
    block_reason          TEXT NOT NULL DEFAULT '',
    block_recurrences     INTEGER NOT NULL DEFAULT 0,
    current_run_id        TEXT,
    epoch                 INTEGER NOT NULL DEFAULT 0,
    scheduled_until       INTEGER
) STRICT;

-- The idempotency key is unique among a board's non-archived tasks by constraint.
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (board, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND status <> 'archived';
CREATE INDEX tasks_board_status ON tasks (board, status);
CREATE INDEX tasks_scheduled ON tasks (scheduled_until) WHERE scheduled_until IS NOT NULL;

CREATE TABLE task_links (
    parent_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    child_id  TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id),
    CHECK (parent_id <> child_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX task_links_child ON task_links (child_id, parent_id);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY,
    task_id    TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    author     TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX comments_task ON comments (task_id, id);

CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,
    session_id  TEXT NOT NULL DEFAULT '',
    profile     TEXT NOT NULL DEFAULT '',
    machine_id  TEXT NOT NULL DEFAULT '',
    review      INTEGER NOT NULL DEFAULT 0,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    outcome     TEXT,
    summary     TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    exit_code   INTEGER,
    UNIQUE (task_id, epoch)
) STRICT;

-- The append-only history. Ids are global, strictly increasing and gap-free: rows are never
-- deleted, and a rolled-back transaction takes its ids with it.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    board      TEXT NOT NULL,
    task_id    TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    details    TEXT NOT NULL DEFAULT '{}',  -- JSON object of strings
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX events_task ON events (task_id, id) WHERE task_id <> '';
CREATE INDEX events_board ON events (board, id);
