"""The `worker_context` text of kanban_show, built from kanband's view of a task.

It follows Hermes's `build_worker_context` (same headings, same caps) so a worker prompt reads
the same on either backend: the task, its body, prior attempts, the handoffs of finished
parents and the comment thread. Hermes's "Recent work by @assignee" section needs a query
across every task's runs that kanband does not offer, so it is left out.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Optional

from kanband_hermes import shapes

MAX_PRIOR_ATTEMPTS = 10
MAX_COMMENTS = 30
MAX_FIELD = 4 * 1024
MAX_BODY = 8 * 1024
MAX_COMMENT = 2 * 1024


def _cap(text: Optional[str], limit: int = MAX_FIELD) -> str:
    if not text:
        return ""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [truncated, {len(text) - limit} chars omitted]"


def _age(ts: Optional[int], now: int) -> str:
    try:
        from hermes_cli.kanban_db import _relative_age

        return _relative_age(ts, now)
    except Exception:
        return ""


def _stamp(ts: Optional[int], now: int) -> str:
    shown = time.strftime("%Y-%m-%d %H:%M", time.localtime(ts or 0))
    age = _age(ts, now)
    return f"{shown}, {age}" if age else shown


def _meta_line(meta: Optional[dict]) -> Optional[str]:
    if not meta:
        return None
    return f"_metadata_: `{_cap(json.dumps(meta, ensure_ascii=False, sort_keys=True))}`"


def build(detail, parent_detail: Callable[[str], object]) -> str:
    """The context text for `detail` (a TaskDetail); `parent_detail(id)` fetches a parent's."""
    now = int(time.time())
    task = detail.task
    meta = shapes.completion_metadata(detail.recent_events)
    lines = [f"# Kanban task {task.id}: {task.title}", ""]
    lines.append(f"Assignee: {task.assignee or '(unassigned)'}")
    lines.append(f"Status:   {shapes.status(task.status)}")
    if task.tenant:
        lines.append(f"Tenant:   {task.tenant}")
    lines.append(f"Workspace: {shapes.workspace_kind(task)} @ {task.workspace.path or '(unresolved)'}")
    if task.max_runtime_seconds:
        lines.append(f"Max runtime: {task.max_runtime_seconds}s")
    if task.workspace.branch:
        lines.append(f"Branch:   {task.workspace.branch}")
    lines.append("")
    if task.body.strip():
        lines += ["## Body", _cap(task.body, MAX_BODY), ""]

    ended = [r for r in detail.runs if shapes.seconds(r.ended_at) is not None]
    shown = ended[-MAX_PRIOR_ATTEMPTS:]
    if shown:
        lines.append("## Prior attempts on this task")
        omitted = len(ended) - len(shown)
        if omitted:
            lines.append(f"_({omitted} earlier attempt{'s' if omitted != 1 else ''} omitted; showing most recent {len(shown)})_")
        for idx, run in enumerate(shown, start=omitted + 1):
            started = shapes.seconds(run.started_at)
            lines.append(f"### Attempt {idx} — {shapes.outcome(run)} ({run.profile or '(unknown)'}, {_stamp(started, now)})")
            if run.summary.strip():
                lines.append(_cap(run.summary))
            if run.error.strip():
                lines.append(f"_error_: {_cap(run.error)}")
            if line := _meta_line(meta.get(run.id)):
                lines.append(line)
            lines.append("")

    wrote_header = False
    for pid in sorted(detail.parents):
        parent = parent_detail(pid)
        if parent is None or shapes.status(parent.task.status) != "done":
            continue
        if not wrote_header:
            lines.append("## Parent task results")
            lines.append(
                "_Handoffs from upstream tasks, captured when each parent completed (see age "
                "below). These are point-in-time snapshots, not live state — if a result drives "
                "your current work and it's not recent, re-verify against the source before "
                "acting on it as current._"
            )
            wrote_header = True
        completed = [r for r in parent.runs if shapes.outcome(r) == "completed"]
        run = completed[-1] if completed else None
        done_ts = shapes.seconds(run.ended_at) if run else shapes.seconds(parent.task.completed_at)
        age = _age(done_ts, now)
        lines.append(f"### {pid}" + (f" (completed {age})" if age else ""))
        if run is not None and run.summary.strip():
            lines.append(_cap(run.summary))
        elif parent.task.result:
            lines.append(_cap(parent.task.result))
        else:
            lines.append("(no result recorded)")
        if run is not None and (line := _meta_line(shapes.completion_metadata(parent.recent_events).get(run.id))):
            lines.append(line)
        lines.append("")

    comments = list(detail.comments)
    shown_c = comments[-MAX_COMMENTS:]
    if shown_c:
        lines.append("## Comment thread")
        omitted = len(comments) - len(shown_c)
        if omitted:
            lines.append(f"_({omitted} earlier comment{'s' if omitted != 1 else ''} omitted; showing most recent {len(shown_c)})_")
        for c in shown_c:
            author = (c.author or "").replace("`", "")
            lines.append(f"comment from worker `{author}` at {_stamp(shapes.seconds(c.created_at), now)}:")
            lines.append(_cap(c.body, MAX_COMMENT))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
