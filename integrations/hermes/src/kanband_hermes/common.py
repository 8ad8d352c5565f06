"""What every tool handler shares: the result and error JSON, one way to make a call, and
Hermes's own guards.

The guards (`ownership`, `orchestrator_only`, `parse_bool`) and the secret redaction are
Hermes 0.19's own functions, imported rather than copied, so a refusal reads exactly as it
does with Hermes's tools.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

import grpc
from agent.redact import redact_sensitive_text
from tools.kanban_tools import (
    _enforce_worker_task_ownership as ownership,
    _parse_bool_arg as parse_bool,
    _require_orchestrator_tool as orchestrator_only,
)
from tools.registry import tool_error

from kanband_hermes import client
from kanband_hermes.pb.kanban.v1 import task_pb2

__all__ = [
    "Refused",
    "call",
    "detail",
    "ok",
    "orchestrator_only",
    "ownership",
    "parse_bool",
    "redact",
    "tool_error",
    "unsupported",
]

# Hermes's kanban_show returns the last 50 events.
SHOW_EVENTS = 50


class Refused(Exception):
    """A handler stops with this; `result` is the tool error JSON to return."""

    def __init__(self, result: str):
        super().__init__(result)
        self.result = result


def ok(**fields: Any) -> str:
    """A success result, as Hermes's `_ok`."""
    return json.dumps({"ok": True, **fields})


def redact(text: Any) -> str:
    """Secrets masked the way Hermes masks them before they reach the board."""
    return redact_sensitive_text(str(text), force=True)


def unsupported(tool: str, what: str) -> str:
    """The error of a tool (or an argument) kanband has no equivalent for."""
    return tool_error(f"{tool}: not supported by the kanband backend: {what}", unsupported=True)


def call(tool: str, method: Callable, request, *, allow: tuple = ()) -> Any:
    """Calls `method(request)`; a refusal becomes `Refused` with the tool error. Codes in
    `allow` return None instead (e.g. ALREADY_EXISTS for an idempotent link)."""
    try:
        return method(request, timeout=client.CALL_TIMEOUT_SECONDS)
    except grpc.RpcError as err:
        if err.code() in allow:
            return None
        raise Refused(tool_error(client.describe(tool, err))) from None


def detail(tool: str, task_id: str, board: Optional[str], recent_events: int = SHOW_EVENTS):
    """The task's detail, or `Refused` with Hermes's "task ... not found" when it does not exist
    or is on another board than the one asked for (Hermes would have opened another file)."""
    stubs = client.stubs()
    found = call(
        tool,
        stubs.tasks.GetTask,
        task_pb2.GetTaskRequest(id=task_id, recent_events=recent_events),
        allow=(grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT),
    )
    wanted = client.board(board)
    if found is None or (wanted and found.task.board != wanted):
        raise Refused(tool_error(f"task {task_id} not found"))
    return found
