-- kanband schema: no index of events by board.
--
-- Every read of the log by board (ListEvents, Watch) walks the log in id order from its cursor
-- and filters the board as it goes (`?2 IS NULL OR board = ?2` cannot use an index on it), so
-- `events_board` was never read, and each event paid for its upkeep.

DROP INDEX events_board;
