"""Builds real Hermes Agent 0.19 kanban boards for kanband's import tests.

Usage: python3 make_boards.py ROOT HERMES_PATH

ROOT becomes a Hermes kanban root (``HERMES_KANBAN_HOME``): the ``default`` board at
``ROOT/kanban.db`` and an ``ops`` board at ``ROOT/kanban/boards/ops/`` with its
``board.json``. HERMES_PATH holds the unpacked hermes-agent 0.19.0 wheel; everything is
written through ``hermes_cli.kanban_db`` itself, except the few states its API reaches only
through its dispatcher or gateway (noted where done). Every feature an import must carry is
used: links, comments, blocked/review/done/archived/triage/scheduled/running tasks, runs with
each outcome, notification subscriptions with an advanced cursor, attachments.

Prints one JSON object on stdout: per board, every row of every table (``SELECT *``) and the
board metadata, as Hermes stored them, for the test to compare kanband's view against.
"""

import json
import os
import sqlite3
import sys


def main() -> None:
    root, hermes_path = sys.argv[1], sys.argv[2]
    os.environ["HERMES_KANBAN_HOME"] = root
    for var in ("HERMES_KANBAN_DB", "HERMES_KANBAN_BOARD", "HERMES_KANBAN_WORKSPACES_ROOT",
                "HERMES_KANBAN_ATTACHMENTS_ROOT"):
        os.environ.pop(var, None)
    sys.path.insert(0, hermes_path)
    from hermes_cli import kanban_db as kb

    default(kb)
    ops(kb)
    print(json.dumps({slug: dump(kb, slug) for slug in ("default", "ops")}))


def default(kb) -> None:
    conn = kb.connect(board="default")
    # A finished parent with every field set, one heartbeat, a completed run.
    parent = kb.create_task(
        conn, title="Write the spec", body="All of it.", assignee="alice", created_by="carol",
        workspace_kind="dir", workspace_path="/srv/spec", tenant="acme", priority=3,
        idempotency_key="spec-1", max_runtime_seconds=900, skills=["writing", "review"],
        max_retries=4, session_id="sess-9",
    )
    conn.execute("UPDATE tasks SET model_override = ? WHERE id = ?", ("anthropic/claude", parent))
    kb.add_comment(conn, parent, "carol", "Please keep it short.")
    claimed = kb.claim_task(conn, parent, claimer="host:1")
    kb.heartbeat_worker(conn, parent, note="halfway", expected_run_id=claimed.current_run_id)
    kb.store_attachment_bytes(conn, parent, "notes.txt", b"spec notes\n",
                              content_type="text/plain", uploaded_by="alice")
    kb.complete_task(conn, parent, result="spec.md written", summary="wrote the spec",
                     metadata={"pages": 3, "files": ["spec.md"]})
    # Its child: promoted to ready when the parent finished; a worktree task with a branch.
    child = kb.create_task(
        conn, title="Build it", assignee="bob", parents=[parent], workspace_kind="worktree",
        workspace_path="/srv/repo", branch_name="feature/build",
    )
    kb.add_comment(conn, child, "alice", "Spec is done, go.")
    # Blocked for input by its worker (run outcome blocked).
    blocked = kb.create_task(conn, title="Ask the customer", assignee="alice")
    kb.claim_task(conn, blocked, claimer="host:1")
    kb.block_task(conn, blocked, reason="which colour?", kind="needs_input")
    # Three failures in a row: crashed, timed out, spawn failed (the dispatcher's paths), then
    # the breaker gives up (outcome gave_up).
    flaky = kb.create_task(conn, title="Flaky job", assignee="bob", max_retries=9)
    for outcome in ("crashed", "timed_out", "spawn_failed"):
        kb.claim_task(conn, flaky, claimer="host:1")
        kb._record_task_failure(conn, flaky, f"{outcome} once", outcome=outcome,
                                release_claim=True, end_run=True)
    doomed = kb.create_task(conn, title="Doomed job", assignee="bob")
    kb.claim_task(conn, doomed, claimer="host:1")
    kb._record_task_failure(conn, doomed, "no binary", outcome="spawn_failed",
                            force_trip=True, release_claim=True, end_run=True)
    # Reclaimed by an operator (outcome reclaimed), back to ready.
    taken = kb.create_task(conn, title="Taken back", assignee="alice")
    kb.claim_task(conn, taken, claimer="host:1")
    kb.reclaim_task(conn, taken, reason="operator wants it", signal_fn=lambda *a, **k: None)
    # Parked by its worker (outcome scheduled).
    parked = kb.create_task(conn, title="Wait for Monday", assignee="alice")
    run = kb.claim_task(conn, parked, claimer="host:1")
    kb.schedule_task(conn, parked, reason="monday", expected_run_id=run.current_run_id)
    # Still running when the import happens: its claim is not carried over.
    running = kb.create_task(conn, title="In flight", assignee="bob")
    kb.claim_task(conn, running, claimer="host:1")
    # Waiting for review: Hermes's API reaches `review` only through its dispatcher's review
    # flow, so the status is set directly.
    review = kb.create_task(conn, title="Check the copy", assignee="carol")
    conn.execute("UPDATE tasks SET status = 'review' WHERE id = ?", (review,))
    triage = kb.create_task(conn, title="Someday", triage=True)
    gone = kb.create_task(conn, title="Old idea", assignee="carol")
    kb.archive_task(conn, gone)
    # Subscriptions: one whose notifier already delivered up to the parent's completion, one
    # never delivered, one without an owning profile.
    kb.add_notify_sub(conn, task_id=parent, platform="telegram", chat_id="42", thread_id="7",
                      user_id="u1", notifier_profile="alice")
    delivered = conn.execute(
        "SELECT max(id) FROM task_events WHERE task_id = ? AND kind = 'completed'", (parent,)
    ).fetchone()[0]
    kb.advance_notify_cursor(conn, task_id=parent, platform="telegram", chat_id="42",
                             thread_id="7", new_cursor=delivered)
    kb.add_notify_sub(conn, task_id=blocked, platform="slack", chat_id="C1",
                      notifier_profile="alice")
    kb.add_notify_sub(conn, task_id=flaky, platform="discord", chat_id="D1")
    # Something happens to the parent after the delivered cursor: it must be delivered once.
    kb.add_comment(conn, parent, "bob", "Thanks!")
    kb.archive_task(conn, parent)
    conn.close()


def ops(kb) -> None:
    kb.create_board("ops", name="Operations", description="Runbooks and chores", icon="wrench",
                    color="#aa3300")
    conn = kb.connect(board="ops")
    first = kb.create_task(conn, title="Rotate keys", assignee="dave", tenant="infra")
    second = kb.create_task(conn, title="Announce rotation", assignee="dave", parents=[first])
    kb.add_comment(conn, second, "dave", "After the rotation.")
    kb.claim_task(conn, first, claimer="host:2")
    kb.complete_task(conn, first, summary="rotated")
    conn.close()


def dump(kb, slug: str) -> dict:
    path = kb.kanban_db_path(slug)
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    tables = {}
    for table in ("tasks", "task_links", "task_comments", "task_events", "task_runs",
                  "task_attachments", "kanban_notify_subs"):
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        tables[table] = [dict(row) for row in rows]
    conn.close()
    meta = kb.read_board_metadata(slug)
    return {"path": str(path), "tables": tables, "metadata": meta}


if __name__ == "__main__":
    main()
