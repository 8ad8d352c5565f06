"""A live Hermes Agent 0.19 board for kanband's import tests: holds the board open in WAL mode
and keeps writing to it until its stdin closes.

Usage: python3 live_board.py ROOT HERMES_PATH

Creates the `default` board under ROOT (HERMES_KANBAN_HOME) through ``hermes_cli.kanban_db``
with three tasks, prints ``ready``, then creates a task and comments on it every few
milliseconds through the same open connection, as a busy Hermes gateway would. When stdin
closes it prints how many tasks it created in all and exits.
"""

import os
import select
import sys


def main() -> None:
    root, hermes_path = sys.argv[1], sys.argv[2]
    os.environ["HERMES_KANBAN_HOME"] = root
    for var in ("HERMES_KANBAN_DB", "HERMES_KANBAN_BOARD"):
        os.environ.pop(var, None)
    sys.path.insert(0, hermes_path)
    from hermes_cli import kanban_db as kb

    conn = kb.connect(board="default")
    # No checkpoint moves the WAL into the database file meanwhile, as when a reader's long
    # transaction (a dashboard, a CLI listing) holds checkpoints back on a busy board: every
    # commit is then only in the WAL, which a plain copy of kanban.db would miss.
    conn.execute("PRAGMA wal_autocheckpoint=0")
    count = 0

    def one() -> None:
        nonlocal count
        task = kb.create_task(conn, title=f"task {count}", assignee="alice")
        kb.add_comment(conn, task, "alice", f"comment on task {count}")
        count += 1

    for _ in range(3):
        one()
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], 0.005)
        if readable and not sys.stdin.read(1):
            break
        one()
    print(count, flush=True)
    conn.close()


if __name__ == "__main__":
    main()
