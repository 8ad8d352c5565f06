#!/usr/bin/env python3
"""The status quo kanband is measured against: Hermes Agent's own kanban board.

Drives the real ``hermes_cli.kanban_db`` (hermes-agent 0.19.0 from PyPI) the way its gateways
and workers drive it: every operation opens a fresh SQLite connection, runs, and closes it
(``connect_closing``). It measures, on a fresh board in a temporary directory:

- durable creates: ``--clients`` processes each creating tasks, one connection per create;
- claim -> complete cycles: ``--clients`` processes each claiming a ready task and completing
  it, one connection per claim and one per complete (the pattern of a dispatcher that claims
  and a worker subprocess that completes).

Prints one JSON object on stdout. Run by ``kanband-bench --scenario status-quo`` so the
README's ratio comes from one invocation; it can also be run by hand:

    python3 bench/hermes_status_quo.py --hermes-path DIR [--tasks N] [--clients N]

where DIR holds the unpacked wheel (``pip download --no-deps hermes-agent==0.19.0`` and unzip)
or is omitted when hermes-agent is importable.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time


def _import_kanban_db(hermes_path: str | None):
    if hermes_path:
        sys.path.insert(0, hermes_path)
    from hermes_cli import kanban_db  # noqa: PLC0415 (imported after sys.path is set)

    return kanban_db


def _failure(errors: dict, err: Exception) -> None:
    """Counts a failed operation by the first words of its message (the board's own checks
    refuse operations under concurrent use; the figure counts only operations that worked)."""
    key = f"{type(err).__name__}: {' '.join(str(err).split()[:3])}"
    errors[key] = errors.get(key, 0) + 1


def _create_worker(args) -> tuple[list[str], dict]:
    hermes_path, db_path, count, client = args
    kb = _import_kanban_db(hermes_path)
    ids, errors = [], {}
    for i in range(count):
        try:
            with kb.connect_closing(db_path=db_path) as conn:
                ids.append(kb.create_task(conn, title=f"bench {client}-{i}", assignee="bench"))
        except Exception as err:  # noqa: BLE001 (counted and reported)
            _failure(errors, err)
    return ids, errors


def _cycle_worker(args) -> tuple[int, dict]:
    hermes_path, db_path, task_ids, client = args
    kb = _import_kanban_db(hermes_path)
    done, errors = 0, {}
    for task_id in task_ids:
        try:
            with kb.connect_closing(db_path=db_path) as conn:
                claimed = kb.claim_task(conn, task_id, claimer=f"bench-{client}")
            if claimed is None:
                continue
            with kb.connect_closing(db_path=db_path) as conn:
                if kb.complete_task(conn, task_id, summary="done"):
                    done += 1
        except Exception as err:  # noqa: BLE001 (counted and reported)
            _failure(errors, err)
    return done, errors


def _run(pool, worker, jobs) -> tuple[list, float]:
    start = time.perf_counter()
    results = pool.map(worker, jobs)
    return results, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hermes-path", help="directory holding hermes_cli (unpacked wheel)")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks created and cycled")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    args = parser.parse_args()

    kb = _import_kanban_db(args.hermes_path)
    with tempfile.TemporaryDirectory(prefix="hermes-status-quo-") as root:
        os.environ["HERMES_KANBAN_HOME"] = root
        db_path = kb.kanban_db_path()
        kb.init_db(db_path=db_path)
        per_client = max(1, args.tasks // args.clients)
        ctx = mp.get_context("fork")
        with ctx.Pool(args.clients) as pool:
            created, create_secs = _run(
                pool,
                _create_worker,
                [(args.hermes_path, db_path, per_client, c) for c in range(args.clients)],
            )
            done, cycle_secs = _run(
                pool,
                _cycle_worker,
                [(args.hermes_path, db_path, ids, c) for c, (ids, _) in enumerate(created)],
            )
        total_created = sum(len(ids) for ids, _ in created)
        total_done = sum(n for n, _ in done)
        errors: dict = {}
        for _, errs in created + done:
            for key, n in errs.items():
                errors[key] = errors.get(key, 0) + n
    print(
        json.dumps(
            {
                "hermes_version": getattr(kb, "__version__", None) or _hermes_version(),
                "clients": args.clients,
                "tasks": total_created,
                "creates_per_s": total_created / create_secs,
                "cycles": total_done,
                "cycles_per_s": total_done / cycle_secs,
                "failed_operations": errors,
            }
        )
    )
    return 0


def _hermes_version() -> str | None:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version("hermes-agent")
    except Exception:  # noqa: BLE001 (an unpacked wheel has no installed metadata)
        return "0.19.0 (unpacked wheel)"


if __name__ == "__main__":
    sys.exit(main())
