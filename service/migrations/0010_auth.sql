-- kanband schema: bearer tokens and who owns each session.
--
-- A token is kept only as the SHA-256 hash of its secret; `id` is its public name in lists
-- and revocations. A revoked token keeps its row (revoked_at set) so lists can say when.

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'supervisor', 'reader')),
    machine_id  TEXT NOT NULL DEFAULT '',   -- supervisor tokens: the machine they serve
    profiles    TEXT NOT NULL DEFAULT '[]', -- supervisor tokens: JSON array; empty means any
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
-- One live token per name: the name is what events record.
CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;

-- The identity that opened a session (a token id, or `local` for the Unix socket's owner);
-- only it (or an admin) may keep, use or close the session.
ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
