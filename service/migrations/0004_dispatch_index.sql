-- kanband schema, version 4: an index that serves the dispatcher's order directly.
--
-- The dispatcher asks for one lane's tasks (`status = 'ready'` or `status = 'review'`) in
-- dispatch order; with the whole order in the index the query reads only as many rows as it
-- returns instead of sorting every ready task.

DROP INDEX tasks_dispatch;
CREATE INDEX tasks_dispatch ON tasks (status, priority DESC, created_at, id);
