-- kanband schema, version 2: sessions, claims and failure accounting.

ALTER TABLE tasks ADD COLUMN cooldown_until INTEGER;
ALTER TABLE tasks ADD COLUMN protocol_violations INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN outcomeless_attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_dispatch ON tasks (status, priority DESC, created_at)
    WHERE status IN ('ready', 'review');

ALTER TABLE runs ADD COLUMN last_heartbeat_at INTEGER;
ALTER TABLE runs ADD COLUMN last_heartbeat_note TEXT NOT NULL DEFAULT '';

-- A supervisor's session. Its deadline lives in memory; it is closed when it expires or its
-- holder closes it, never by a restart of kanband (it then gets a full TTL from start-up).
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    machine_id   TEXT NOT NULL,
    hostname     TEXT NOT NULL DEFAULT '',
    profiles     TEXT NOT NULL,              -- JSON array
    capabilities TEXT NOT NULL DEFAULT '[]', -- JSON array
    slots        INTEGER NOT NULL,
    ttl_ms       INTEGER NOT NULL,
    review_lane  INTEGER NOT NULL DEFAULT 0,
    opened_at    INTEGER NOT NULL,
    closed_at    INTEGER,
    close_reason TEXT
) STRICT;

-- A claim: the lease a session holds on a task for one run. Rows are kept after they end so a
-- stale token can be told why it was fenced; they are not deleted with their task.
CREATE TABLE claims (
    token         TEXT PRIMARY KEY,
    task_id       TEXT NOT NULL,
    board         TEXT NOT NULL,
    epoch         INTEGER NOT NULL,
    run_id        TEXT NOT NULL,
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    profile       TEXT NOT NULL,
    review        INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL CHECK (state IN ('live', 'revoking', 'ended')),
    revoke_cause  TEXT,        -- archived, reclaimed, scheduled, board_reset, max_runtime, stale_progress
    revoke_until  INTEGER,     -- for `scheduled`: the wake-up time to apply on confirmation
    end_reason    TEXT,        -- the run outcome, or board_reset
    granted_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,  -- coarse: the deadline at grant (renewals stay in memory)
    ended_at      INTEGER
) STRICT;
-- At most one live holder per task, by constraint.
CREATE UNIQUE INDEX claims_one_live_per_task ON claims (task_id) WHERE state <> 'ended';
CREATE INDEX claims_session ON claims (session_id) WHERE state <> 'ended';
