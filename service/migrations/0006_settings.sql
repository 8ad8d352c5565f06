-- kanband schema: settings that outlive a restart.
--
-- `storage_limit_bytes` is the cap Admin.SetStorageLimit set (absent: no cap). It is applied
-- at start-up before anything is written, so a database held at its cap stays held there.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
