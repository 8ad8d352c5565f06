-- kanband schema: the dispatch indexes hold only the tasks a dispatcher can grant.
--
-- Both indexes are read only for one lane's tasks (`status = 'ready'` or `status = 'review'`),
-- yet every task was in them in every status, so each status change moved an entry in each,
-- and a claim -> complete cycle (ready -> running -> done) paid for eight index writes it never
-- read. Holding the two lanes only, a claim removes one entry from each and a complete none,
-- and a database of a million done tasks keeps two small indexes. The queries that use them
-- name their lane in their text, which is what lets SQLite use a partial index.

DROP INDEX tasks_dispatch;
CREATE INDEX tasks_dispatch ON tasks (status, priority DESC, created_at, id)
    WHERE status = 'ready' OR status = 'review';

DROP INDEX tasks_dispatch_by_assignee;
CREATE INDEX tasks_dispatch_by_assignee
    ON tasks (assignee, board, status, priority DESC, created_at, id)
    WHERE status = 'ready' OR status = 'review';
