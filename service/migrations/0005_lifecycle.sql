-- kanband schema, version 5: what a lease's life needs to keep its meaning across restarts,
-- operator cancels and retried calls.

-- While an operator's cancel request is pending on a claim: when its grace ends (Unix ms). Its
-- end by the holder, or by the grace, is then an operator reclaim, and a restart still revokes
-- it when the grace ends.
ALTER TABLE claims ADD COLUMN cancel_until INTEGER;

-- The session an operator reclaim took the task from: the dispatcher hands it to another
-- session that can run it first. Cleared by the next grant.
ALTER TABLE tasks ADD COLUMN reclaimed_from TEXT;

-- A coarse copy of a session's deadline (Unix ms), as for claims.expires_at: written at open,
-- at start-up and when renewals have moved the deadline far past it; a restart restores a
-- session whose copy is still in the future as it was, and counts the others as re-armed.
ALTER TABLE sessions ADD COLUMN expires_at INTEGER;

-- The holder call that ended a claim (complete, block, request_review, request_changes,
-- release, report_exit); NULL when kanband ended it. The same call retried with the same
-- token (its reply was lost) is answered as already recorded.
ALTER TABLE claims ADD COLUMN ended_by TEXT;
