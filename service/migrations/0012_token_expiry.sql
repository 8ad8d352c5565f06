-- kanband schema: bearer tokens that stop working by themselves.
--
-- `expires_at` is the Unix ms from which the token authenticates nothing; NULL: it works until
-- it is revoked. An expired token keeps its row (and, until it is revoked, its name), so lists
-- and events can still say who it was.

ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
