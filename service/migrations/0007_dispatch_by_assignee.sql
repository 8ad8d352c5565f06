-- kanband schema, version 7: the dispatcher looks candidates up by what a waiter can run.
--
-- A task goes to the profile named by its assignee, else by its board's default assignee. The
-- grant pass asks, for each profile a waiting session runs and each open board, for one lane's
-- tasks with that assignee (or with none, on a board whose default is that profile) in dispatch
-- order. With the assignee, board and lane leading the index, each lookup seeks straight to
-- those tasks and reads only as many rows as it returns, so tasks no waiter can run, however
-- many, cost a pass nothing. `tasks_dispatch` still serves the whole lane (the preview).

CREATE INDEX tasks_dispatch_by_assignee
    ON tasks (assignee, board, status, priority DESC, created_at, id);
