"""The board tools: kanban_show, kanban_list, kanban_create, kanban_comment, kanban_unblock,
kanban_link, over kanband's Tasks and Notifications services.

kanband promotes a `todo` child the moment its last parent finishes, so kanban_list has
nothing to recompute (its `promoted` is always 0).
"""

from __future__ import annotations

import json
import os
from typing import Optional

import grpc
from tools.kanban_tools import KANBAN_LIST_DEFAULT_LIMIT, KANBAN_LIST_MAX_LIMIT

from kanband_hermes import client, context, shapes
from kanband_hermes.common import (
    Refused,
    call,
    detail,
    ok,
    orchestrator_only,
    ownership,
    parse_bool,
    redact,
    tool_error,
    unsupported,
)
from kanband_hermes.pb.kanban.v1 import notifications_pb2, task_pb2


# Events fetched per shown task: enough to find every run's completion metadata (kanband's
# most), of which kanban_show returns the last 50 as Hermes does.
DETAIL_EVENTS = 1000


def _parent_detail(pid: str):
    try:
        return detail("kanban_show", pid, None, recent_events=DETAIL_EVENTS)
    except Refused:
        return None


def handle_show(args: dict, **kw) -> str:
    """kanban_show from Tasks.GetTask."""
    tid = args.get("task_id") or client.worker_task()
    if not tid:
        return tool_error("task_id is required (or set HERMES_KANBAN_TASK in the env)")
    try:
        found = detail("kanban_show", tid, args.get("board"), recent_events=DETAIL_EVENTS)
        meta = shapes.completion_metadata(found.recent_events)
        return json.dumps({
            "task": shapes.task_dict(found.task),
            "parents": list(found.parents),
            "children": list(found.children),
            "comments": [shapes.comment_dict(c) for c in found.comments],
            "events": [shapes.event_dict(e) for e in found.recent_events[-50:]],
            "runs": [shapes.run_dict(r, meta) for r in found.runs],
            "worker_context": context.build(found, _parent_detail),
        })
    except Refused as refused:
        return refused.result


def _all_tasks(tool: str, request: task_pb2.ListTasksRequest) -> list:
    stubs = client.stubs()
    found, token = [], ""
    while True:
        request.page_token = token
        page = call(tool, stubs.tasks.ListTasks, request)
        found.extend(page.tasks)
        token = page.next_page_token
        if not token:
            return found


def handle_list(args: dict, **kw) -> str:
    """kanban_list from Tasks.ListTasks, in Hermes's order (priority, then age)."""
    if guard := orchestrator_only("kanban_list"):
        return guard
    include_archived, bool_error = parse_bool(args, "include_archived")
    if bool_error:
        return tool_error(bool_error)
    limit = args.get("limit")
    if limit is None:
        limit = KANBAN_LIST_DEFAULT_LIMIT
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        return tool_error("limit must be an integer")
    if limit < 1:
        return tool_error("limit must be >= 1")
    if limit > KANBAN_LIST_MAX_LIMIT:
        return tool_error(f"limit must be <= {KANBAN_LIST_MAX_LIMIT}")
    wanted = args.get("status")
    if wanted is not None and wanted not in shapes.STATUS_BY_NAME:
        return tool_error(f"kanban_list: status must be one of {sorted(shapes.STATUS_BY_NAME)}")
    if wanted is not None:
        statuses = [shapes.STATUS_BY_NAME[wanted]]
    elif include_archived:
        statuses = list(shapes.STATUS_BY_NAME.values())
    else:
        statuses = []
    request = task_pb2.ListTasksRequest(
        board=client.board(args.get("board")), statuses=statuses,
        assignee=args.get("assignee") or "", tenant=args.get("tenant") or "", page_size=1000,
    )
    try:
        rows = sorted(_all_tasks("kanban_list", request), key=lambda t: -t.priority)
        truncated = len(rows) > limit
        rows = rows[:limit]
        out = []
        for task in rows:
            found = detail("kanban_list", task.id, None, recent_events=1)
            out.append(shapes.summary_dict(task, list(found.parents), list(found.children)))
        return json.dumps({
            "tasks": out,
            "count": len(out),
            "limit": limit,
            "truncated": truncated,
            "next_limit": min(limit * 2, KANBAN_LIST_MAX_LIMIT) if truncated and limit < KANBAN_LIST_MAX_LIMIT else None,
            "promoted": 0,
        })
    except Refused as refused:
        return refused.result


def _skills(value) -> Optional[list[str]]:
    """Hermes's skills rules: a list (or one name), no commas, no toolset names, deduplicated."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise Refused(tool_error(f"skills must be a list of skill names, got {type(value).__name__}"))
    from hermes_cli.kanban_db import KNOWN_TOOLSET_NAMES

    names = [str(s).strip() for s in value if s and str(s).strip()]
    for name in names:
        if "," in name:
            raise Refused(tool_error(f"kanban_create: skill name cannot contain comma: {name!r}"))
    typos = [n for n in names if n.casefold() in KNOWN_TOOLSET_NAMES]
    if typos:
        raise Refused(tool_error(
            f"kanban_create: {', '.join(repr(n) for n in typos)} "
            f"{'is a toolset name' if len(typos) == 1 else 'are toolset names'}, not skill name(s)"
        ))
    return list(dict.fromkeys(names))


def _workspace(args: dict) -> task_pb2.Workspace:
    """The workspace asked for, else the spawning worker's own (as Hermes inherits it)."""
    kind, path = args.get("workspace_kind"), args.get("workspace_path")
    if kind is None and path is None and client.worker_task():
        try:
            own = detail("kanban_create", client.worker_task(), None, recent_events=1).task
            return task_pb2.Workspace(kind=own.workspace.kind, path=own.workspace.path, branch=own.workspace.branch)
        except Refused:
            pass
    kind = kind or "scratch"
    if kind not in shapes.WORKSPACE_KIND_BY_NAME:
        raise Refused(tool_error(
            f"kanban_create: workspace_kind must be one of {sorted(shapes.WORKSPACE_KIND_BY_NAME)}, got {kind!r}"
        ))
    return task_pb2.Workspace(kind=shapes.WORKSPACE_KIND_BY_NAME[kind], path=path or "")


def handle_create(args: dict, **kw) -> str:
    """kanban_create through Tasks.CreateTask (and Notifications.Subscribe for the caller's
    chat, as Hermes auto-subscribes it)."""
    title = args.get("title")
    if not title or not str(title).strip():
        return tool_error("title is required")
    assignee = args.get("assignee")
    if not assignee:
        return tool_error(
            "assignee is required — name the profile that should execute this "
            "task (the dispatcher will only spawn tasks with an assignee)"
        )
    try:
        triage, bool_error = parse_bool(args, "triage")
        goal_mode, goal_error = parse_bool(args, "goal_mode")
        if bool_error or goal_error:
            return tool_error(bool_error or goal_error)
        if goal_mode or args.get("goal_max_turns") is not None:
            return unsupported("kanban_create", "goal_mode (kanband tasks have no goal loop)")
        if args.get("project") or args.get("project_id"):
            return unsupported("kanban_create", "project (Hermes projects live in a per-profile projects.db)")
        parents = args.get("parents") or []
        if isinstance(parents, str):
            parents = [parents]
        if not isinstance(parents, (list, tuple)):
            return tool_error(f"parents must be a list of task ids, got {type(parents).__name__}")
        initial = str(args.get("initial_status") or "running")
        if initial not in ("running", "blocked"):
            return tool_error("kanban_create: initial_status must be one of ['blocked', 'running']")
        if initial == "blocked":
            start = task_pb2.TASK_STATUS_BLOCKED
        elif triage:
            start = task_pb2.TASK_STATUS_TRIAGE
        else:
            start = task_pb2.TASK_STATUS_UNSPECIFIED
        skills = _skills(args.get("skills"))
        runtime = args.get("max_runtime_seconds")
        request = task_pb2.CreateTaskRequest(
            board=client.board(args.get("board")),
            title=str(title).strip(),
            body=str(args.get("body") or ""),
            assignee=str(assignee),
            priority=int(args.get("priority") or 0),
            created_by=client.actor(),
            tenant=args.get("tenant") or os.environ.get("HERMES_TENANT") or "",
            idempotency_key=args.get("idempotency_key") or "",
            parents=[str(p) for p in parents if p],
            initial_status=start,
            workspace=_workspace(args),
            max_runtime_seconds=int(runtime) if runtime is not None else 0,
            worker_options=task_pb2.WorkerOptions(skills=skills or []),
        )
        created = call("kanban_create", client.stubs().tasks.CreateTask, request).task
        return ok(task_id=created.id, status=shapes.status(created.status), subscribed=_auto_subscribe(created.id))
    except (TypeError, ValueError) as err:
        return tool_error(f"kanban_create: {err}")
    except Refused as refused:
        return refused.result


def _auto_subscribe(task_id: str) -> bool:
    """Subscribes the calling chat session to the new task, where Hermes would have: the same
    config gate and session variables as Hermes's `_maybe_auto_subscribe`. Never fails the
    create."""
    try:
        from hermes_cli.config import cfg_get, load_config

        if not cfg_get(load_config(), "kanban", "auto_subscribe_on_create", default=True):
            return False
    except Exception:
        pass
    try:
        from gateway.session_context import get_session_env

        platform = get_session_env("HERMES_SESSION_PLATFORM", "")
        chat_id = get_session_env("HERMES_SESSION_CHAT_ID", "")
        if not platform or not chat_id:
            key = get_session_env("HERMES_SESSION_KEY", "") or os.environ.get("HERMES_SESSION_KEY", "")
            if not key:
                return False
            platform, chat_id = "tui", key
        owner = get_session_env("HERMES_SESSION_PROFILE", "") or os.environ.get("HERMES_PROFILE") or ""
        if not owner:
            return False
        request = notifications_pb2.SubscribeRequest(
            task_id=task_id, platform=platform, chat_id=chat_id,
            thread_id=get_session_env("HERMES_SESSION_THREAD_ID", "") or "",
            owner_profile=owner, mode=notifications_pb2.DELIVERY_MODE_EVERY,
        )
        client.stubs().notifications.Subscribe(request, timeout=client.CALL_TIMEOUT_SECONDS)
        return True
    except Exception:
        return False


def handle_comment(args: dict, **kw) -> str:
    """kanban_comment through Tasks.AddComment, authored by the Hermes profile."""
    tid = args.get("task_id")
    if not tid:
        return tool_error(
            "task_id is required (use the current task id if that's what "
            "you mean — pulls from env but kept explicit here)"
        )
    body = args.get("body")
    if not body or not str(body).strip():
        return tool_error("body is required")
    try:
        if args.get("board"):
            detail("kanban_comment", tid, args.get("board"), recent_events=1)
        request = task_pb2.AddCommentRequest(task_id=tid, author=client.actor(), body=redact(body))
        comment = call("kanban_comment", client.stubs().tasks.AddComment, request)
        return ok(task_id=tid, comment_id=comment.id)
    except Refused as refused:
        return refused.result


def handle_unblock(args: dict, **kw) -> str:
    """kanban_unblock through Tasks.UnblockTask."""
    if guard := orchestrator_only("kanban_unblock"):
        return guard
    tid = args.get("task_id")
    if not tid:
        return tool_error("task_id is required")
    if refused := ownership(str(tid)):
        return refused
    try:
        detail("kanban_unblock", str(tid), args.get("board"), recent_events=1)
        request = task_pb2.UnblockTaskRequest(id=str(tid), actor=client.actor())
        task = call("kanban_unblock", client.stubs().tasks.UnblockTask, request)
        return ok(task_id=str(tid), status=shapes.status(task.status))
    except Refused as refused:
        return refused.result


def handle_link(args: dict, **kw) -> str:
    """kanban_link through Tasks.LinkTasks; linking twice is not an error (as in Hermes)."""
    parent_id, child_id = args.get("parent_id"), args.get("child_id")
    if not parent_id or not child_id:
        return tool_error("both parent_id and child_id are required")
    try:
        if args.get("board"):
            detail("kanban_link", child_id, args.get("board"), recent_events=1)
        request = task_pb2.LinkTasksRequest(parent_id=parent_id, child_id=child_id, actor=client.actor())
        call("kanban_link", client.stubs().tasks.LinkTasks, request, allow=(grpc.StatusCode.ALREADY_EXISTS,))
        return ok(parent_id=parent_id, child_id=child_id)
    except Refused as refused:
        return refused.result
