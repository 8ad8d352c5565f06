-- kanband schema: files attached to tasks.
--
-- The bytes live outside the database, in `attachments/<sha256>` in the data directory, one
-- file per distinct content: a blob is written to a temporary file, synced, renamed into place
-- and the directory synced before the row that names it commits, so a committed row always
-- names bytes that are on disk. A blob no row names (a crash between the file and the row, a
-- deleted attachment, a task deleted with its board's reset) is removed: at once when kanband
-- removes the last row naming it, else by the sweep at start-up.

CREATE TABLE attachments (
    -- `a_` and 16 hex digits, ordered like task ids.
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    -- As the uploader gave it; only a name, never a path.
    name        TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    -- 64 lowercase hex digits: the blob's file name.
    sha256      TEXT NOT NULL,
    uploaded_by TEXT NOT NULL DEFAULT '',
    -- Unix ms.
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX attachments_task ON attachments (task_id, id);
CREATE INDEX attachments_sha256 ON attachments (sha256);
