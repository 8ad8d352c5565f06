"""kanband messages turned into the JSON shapes Hermes 0.19's kanban tools return.

Hermes stores times as integer Unix seconds and statuses, outcomes and kinds as lowercase
words; kanband sends Timestamps and enums. The keys here are exactly the keys Hermes's
`tools/kanban_tools.py` puts in its results (the tests compare them against Hermes's own
tools). Where Hermes uses integer run ids, kanband's are `r_...` strings.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from kanband_hermes.pb.kanban.v1 import task_pb2

_WORKSPACE_KINDS = {
    task_pb2.WORKSPACE_KIND_UNSPECIFIED: "scratch",
    task_pb2.WORKSPACE_KIND_SCRATCH: "scratch",
    task_pb2.WORKSPACE_KIND_WORKTREE: "worktree",
    task_pb2.WORKSPACE_KIND_DIR: "dir",
}
WORKSPACE_KIND_BY_NAME = {
    "scratch": task_pb2.WORKSPACE_KIND_SCRATCH,
    "worktree": task_pb2.WORKSPACE_KIND_WORKTREE,
    "dir": task_pb2.WORKSPACE_KIND_DIR,
}
BLOCK_KIND_BY_NAME = {
    None: task_pb2.BLOCK_KIND_NONE,
    "dependency": task_pb2.BLOCK_KIND_DEPENDENCY,
    "needs_input": task_pb2.BLOCK_KIND_NEEDS_INPUT,
    "capability": task_pb2.BLOCK_KIND_CAPABILITY,
    "transient": task_pb2.BLOCK_KIND_TRANSIENT,
}
STATUS_BY_NAME = {
    task_pb2.TaskStatus.Name(value)[len("TASK_STATUS_"):].lower(): value
    for value in task_pb2.TaskStatus.values()
    if value != task_pb2.TASK_STATUS_UNSPECIFIED
}


def status(value: int) -> str:
    """`TASK_STATUS_READY` as Hermes writes it: `ready`."""
    return task_pb2.TaskStatus.Name(value)[len("TASK_STATUS_"):].lower()


def seconds(ts) -> Optional[int]:
    """A Timestamp as Unix seconds, or None when unset (as Hermes's NULL columns)."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return int(ts.seconds)


def _or_none(text: str) -> Optional[str]:
    return text or None


def model_override(task) -> Optional[str]:
    """Hermes's `model_override`: the worker model kanband keeps in the worker options."""
    return _or_none(task.worker_options.model)


def workspace_kind(task) -> str:
    """The workspace kind word (`scratch`, `worktree`, `dir`)."""
    return _WORKSPACE_KINDS.get(task.workspace.kind, "scratch")


def task_dict(task) -> dict[str, Any]:
    """The `task` object of kanban_show."""
    return {
        "id": task.id,
        "title": task.title,
        "body": _or_none(task.body),
        "assignee": _or_none(task.assignee),
        "status": status(task.status),
        "tenant": _or_none(task.tenant),
        "priority": task.priority,
        "workspace_kind": workspace_kind(task),
        "workspace_path": _or_none(task.workspace.path),
        "created_by": _or_none(task.created_by),
        "created_at": seconds(task.created_at),
        "started_at": seconds(task.started_at),
        "completed_at": seconds(task.completed_at),
        "result": _or_none(task.result),
        "current_run_id": _or_none(task.current_run_id),
        "model_override": model_override(task),
    }


def summary_dict(task, parents: list[str], children: list[str]) -> dict[str, Any]:
    """One row of kanban_list."""
    return {
        "id": task.id,
        "title": task.title,
        "assignee": _or_none(task.assignee),
        "status": status(task.status),
        "priority": task.priority,
        "tenant": _or_none(task.tenant),
        "workspace_kind": workspace_kind(task),
        "workspace_path": _or_none(task.workspace.path),
        # Hermes projects (a per-profile projects.db) have no kanband equivalent.
        "project_id": None,
        "created_by": _or_none(task.created_by),
        "created_at": seconds(task.created_at),
        "started_at": seconds(task.started_at),
        "completed_at": seconds(task.completed_at),
        "current_run_id": _or_none(task.current_run_id),
        "model_override": model_override(task),
        "parents": parents,
        "children": children,
        "parent_count": len(parents),
        "child_count": len(children),
    }


def outcome(run) -> Optional[str]:
    """The run's outcome word, or None while it runs."""
    if run.outcome == task_pb2.RUN_OUTCOME_UNSPECIFIED:
        return None
    return task_pb2.RunOutcome.Name(run.outcome)[len("RUN_OUTCOME_"):].lower()


def run_status(run) -> str:
    """Hermes's run `status`: `running` until it ends, `done` for a completion, else the
    outcome."""
    word = outcome(run)
    if word is None:
        return "running"
    return "done" if word == "completed" else word


def completion_metadata(events) -> dict[str, dict]:
    """Each run's completion metadata, read back from its `completed` event.

    kanband records the metadata of Leases.Complete on the event as `meta.<key>` details (the
    run row has no metadata column); values that were JSON when sent are decoded again.
    """
    found: dict[str, dict] = {}
    for event in events:
        if event.kind != "completed" or "run" not in event.details:
            continue
        meta = {}
        for key, value in event.details.items():
            if key.startswith("meta."):
                try:
                    meta[key[len("meta."):]] = json.loads(value)
                except ValueError:
                    meta[key[len("meta."):]] = value
        if meta:
            found[event.details["run"]] = meta
    return found


def run_dict(run, metadata: dict[str, dict]) -> dict[str, Any]:
    """One entry of kanban_show's `runs`."""
    return {
        "id": run.id,
        "profile": _or_none(run.profile),
        "status": run_status(run),
        "outcome": outcome(run),
        "summary": _or_none(run.summary),
        "error": _or_none(run.error),
        "metadata": metadata.get(run.id),
        "started_at": seconds(run.started_at),
        "ended_at": seconds(run.ended_at),
    }


def event_dict(event) -> dict[str, Any]:
    """One entry of kanban_show's `events`."""
    return {
        "kind": event.kind,
        "payload": dict(event.details) or None,
        "created_at": seconds(event.created_at),
        "run_id": event.details.get("run") or None,
    }


def comment_dict(comment) -> dict[str, Any]:
    """One entry of kanban_show's `comments`."""
    return {
        "author": comment.author,
        "body": comment.body,
        "created_at": seconds(comment.created_at),
    }
