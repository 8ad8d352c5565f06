-- kanband schema: boards brought in from another kanban by `kanband import`.
--
-- `imported` holds, as a JSON object, the source's own record of a row (every column as read,
-- under "row") that an import mapped into kanband's columns, so nothing the source had is lost
-- even where kanband has no column for it; NULL for rows kanband made itself.
ALTER TABLE tasks ADD COLUMN imported TEXT;
ALTER TABLE runs ADD COLUMN imported TEXT;
ALTER TABLE comments ADD COLUMN imported TEXT;
ALTER TABLE subscriptions ADD COLUMN imported TEXT;

-- One row per source board imported, so a second import of the same board is a no-op: it is
-- known by the path it was read from and by a fingerprint of its contents (its oldest task),
-- which survives the file being moved or copied.
CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    system      TEXT NOT NULL,            -- the kind of source, e.g. hermes
    source_path TEXT NOT NULL,            -- the database file read (canonical path)
    fingerprint TEXT,                     -- NULL for a source with no task
    board       TEXT NOT NULL,            -- the kanband board it went into
    imported_at INTEGER NOT NULL,
    report      TEXT NOT NULL DEFAULT '{}'  -- JSON: what was read, imported and skipped
) STRICT;
CREATE INDEX imports_source ON imports (system, source_path);
CREATE INDEX imports_fingerprint ON imports (system, fingerprint) WHERE fingerprint IS NOT NULL;
