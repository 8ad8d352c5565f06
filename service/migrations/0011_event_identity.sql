-- kanband schema: every event records the authenticated identity that caused it.
--
-- `actor` stays what the caller wrote (a free-form note, "on behalf of"); `identity` and
-- `identity_role` are the name and role the auth layer authenticated (`kanband`/`system` for
-- what kanband does itself). Events written before this version read as `unknown`.

ALTER TABLE events ADD COLUMN identity TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE events ADD COLUMN identity_role TEXT NOT NULL DEFAULT 'unknown';
