"""The run-lifecycle tools: kanban_complete, kanban_block, kanban_heartbeat, and the attachment
tools (kanban_attach, kanban_attach_url, kanban_attachments) over kanban.v1.Attachments.

A worker's own task goes through its claim (Leases.Complete, Block, Heartbeat with
`KANBAN_CLAIM_TOKEN`), so a worker whose claim was revoked or superseded is refused, which
Hermes's `expected_run_id` check approximated. Without a claim (an orchestrator profile),
kanban_block goes through Tasks.BlockTask for a task that is not running; kanband has no way
to complete a task or record progress without the claim, and says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from typing import Optional
from urllib.parse import unquote, urlparse

import grpc

from kanband_hermes import client
from kanband_hermes.common import Refused, call, detail, ok, ownership, redact, tool_error, unsupported
from kanband_hermes.pb.kanban.v1 import attachments_pb2, lease_pb2, task_pb2
from kanband_hermes.shapes import BLOCK_KIND_BY_NAME, status

NO_TASK = "task_id is required (or set HERMES_KANBAN_TASK in the env)"
# Hermes's agent loop calls the auto-heartbeat bridge on every activity tick; one call a
# minute is plenty (the supervisor renews the lease itself).
AUTO_HEARTBEAT_INTERVAL_SECONDS = 60.0


def _task_id(args: dict) -> str:
    tid = args.get("task_id") or client.worker_task()
    if not tid:
        raise Refused(tool_error(NO_TASK))
    if refused := ownership(tid):
        raise Refused(refused)
    return tid


def _claim(tool: str, tid: str, what: str) -> str:
    """The claim token for `tid`, or the reason there is none."""
    token = client.claim_token()
    if client.worker_task() == tid and token:
        return token
    if client.worker_task() == tid:
        raise Refused(tool_error(
            f"{tool}: no KANBAN_CLAIM_TOKEN in the environment; kanband {what} a task only "
            "through the claim its kanband-gateway supervisor hands the worker"
        ))
    raise Refused(unsupported(
        tool, f"kanband {what} a task only through the claim of the worker running it; "
        f"{tid} is not this process's claimed task (HERMES_KANBAN_TASK)"
    ))


def _fire(event: str, tid: str, task, run_id: Optional[str], **fields) -> None:
    """Hermes's lifecycle plugin hook, as `kanban_db` fires it after a committed change."""
    try:
        from hermes_cli.plugins import invoke_hook
        from hermes_cli.profiles import get_active_profile_name

        invoke_hook(
            event, task_id=tid, profile_name=get_active_profile_name(), board=task.board,
            assignee=task.assignee or None, run_id=run_id, **fields,
        )
    except Exception:
        pass


def _metadata_map(metadata: dict) -> dict[str, str]:
    """Completion metadata as kanband's string map: strings as they are, the rest as JSON."""
    return {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in metadata.items()}


def _verify_cards(tid: str, cards: list[str]) -> list[str]:
    """Hermes's created_cards check: each card exists and was created by the completing task's
    assignee, by the task itself, or is its child. Returns the verified ids."""
    own = detail("kanban_complete", tid, None, recent_events=1)
    verified, phantom = [], []
    for cid in dict.fromkeys(cards):
        try:
            card = detail("kanban_complete", cid, None, recent_events=1).task
        except Refused:
            phantom.append(cid)
            continue
        trusted = (own.task.assignee and card.created_by == own.task.assignee) or card.created_by == tid
        (verified if trusted or cid in own.children else phantom).append(cid)
    if phantom:
        raise Refused(tool_error(
            "kanban_complete blocked: the following created_cards do not exist or were not "
            f"created by this worker: {', '.join(phantom)}. Your task is still in-flight (no "
            "state change). Retry kanban_complete with the same summary/metadata and either "
            "drop these ids from created_cards, or pass created_cards=[] to skip the card-claim "
            "check entirely."
        ))
    return verified


def _list_arg(value, what: str) -> Optional[list[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise Refused(tool_error(f"{what}, got {type(value).__name__}"))
    return [str(v).strip() for v in value if str(v).strip()]


def handle_complete(args: dict, **kw) -> str:
    """kanban_complete through Leases.Complete."""
    try:
        tid = _task_id(args)
        summary = redact(args["summary"]) if args.get("summary") else args.get("summary")
        result = redact(args["result"]) if args.get("result") else args.get("result")
        metadata = args.get("metadata")
        if isinstance(metadata, dict):
            try:
                metadata = json.loads(redact(json.dumps(metadata)))
            except ValueError:
                pass
        cards = _list_arg(args.get("created_cards"), "created_cards must be a list of task ids")
        artifacts = _list_arg(args.get("artifacts"), "artifacts must be a list of file paths")
        if artifacts:
            if metadata is None:
                metadata = {}
            elif not isinstance(metadata, dict):
                return tool_error(f"metadata must be an object/dict, got {type(metadata).__name__}")
            merged = metadata.get("artifacts") if isinstance(metadata.get("artifacts"), (list, tuple)) else []
            metadata["artifacts"] = list(dict.fromkeys(str(p).strip() for p in [*merged, *artifacts] if str(p).strip()))
        if not (summary or result):
            return tool_error("provide at least one of: summary (preferred), result")
        if metadata is not None and not isinstance(metadata, dict):
            return tool_error(f"metadata must be an object/dict, got {type(metadata).__name__}")
        metadata = dict(metadata or {})
        if session := os.environ.get("HERMES_SESSION_ID"):
            metadata["worker_session_id"] = session
        token = _claim("kanban_complete", tid, "completes")
        if cards:
            metadata["verified_cards"] = _verify_cards(tid, cards)
        request = lease_pb2.CompleteRequest(
            claim_token=token, result=result or "", summary=summary or result or "",
            metadata=_metadata_map(metadata),
        )
        task = call("kanban_complete", client.stubs().leases.Complete, request)
        run_id = client.worker_run_id()
        _fire("kanban_task_completed", tid, task, run_id, summary=summary if summary is not None else result)
        return ok(task_id=tid, run_id=run_id)
    except Refused as refused:
        return refused.result


def handle_block(args: dict, **kw) -> str:
    """kanban_block: Leases.Block on the worker's own claim, else Tasks.BlockTask."""
    try:
        tid = _task_id(args)
        reason = args.get("reason")
        if not reason or not str(reason).strip():
            return tool_error("reason is required — explain what input you need")
        reason = redact(reason)
        kind = args.get("kind")
        if kind not in BLOCK_KIND_BY_NAME:
            return tool_error(f"kind must be one of {sorted(k for k in BLOCK_KIND_BY_NAME if k)} (or omit it)")
        stubs = client.stubs()
        if client.worker_task() == tid:
            token = _claim("kanban_block", tid, "blocks a running")
            request = lease_pb2.HolderBlockRequest(claim_token=token, reason=reason, kind=BLOCK_KIND_BY_NAME[kind])
            task = call("kanban_block", stubs.leases.Block, request)
            run_id = client.worker_run_id()
        else:
            detail("kanban_block", tid, args.get("board"), recent_events=1)
            request = task_pb2.BlockTaskRequest(id=tid, reason=reason, kind=BLOCK_KIND_BY_NAME[kind], actor=client.actor())
            task = call("kanban_block", stubs.tasks.BlockTask, request)
            runs = detail("kanban_block", tid, None, recent_events=1).runs
            run_id = runs[-1].id if runs else None
        _fire("kanban_task_blocked", tid, task, run_id, reason=reason)
        return ok(task_id=tid, run_id=run_id, status=status(task.status), block_kind=kind)
    except Refused as refused:
        return refused.result


def handle_heartbeat(args: dict, **kw) -> str:
    """kanban_heartbeat through Leases.Heartbeat (the lease itself is renewed by the
    supervisor's keep-alive stream)."""
    try:
        tid = _task_id(args)
        token = _claim("kanban_heartbeat", tid, "records progress on")
        note = args.get("note")
        request = lease_pb2.HeartbeatRequest(claim_token=token, note=str(note) if note else "")
        call("kanban_heartbeat", client.stubs().leases.Heartbeat, request)
        return ok(task_id=tid)
    except Refused as refused:
        return refused.result


# Bytes per Attachments.Upload message (kanband accepts messages up to 4 MiB).
UPLOAD_CHUNK = 1024 * 1024


def _attach_bytes(tool: str, tid: str, filename: str, data: bytes, content_type) -> str:
    """Stores `data` on `tid` through Attachments.Upload, as Hermes's `store_attachment_bytes`
    does on its board: the name reduced to a safe leaf by Hermes's own function, uploaded by
    "agent". A worker's upload to its own task carries its claim token, so kanband fences it;
    kanband enforces its size cap (`--attachment-max-bytes`, 25 MiB by default like Hermes)."""
    from hermes_cli import kanban_db as kb

    try:
        name = kb._safe_attachment_name(filename)
    except ValueError as e:
        raise Refused(tool_error(f"{tool}: {e}")) from None
    token = client.claim_token() if client.worker_task() == tid else None
    header = attachments_pb2.UploadHeader(
        task_id=tid, name=name, media_type=str(content_type or "").strip().lower(),
        claim_token=token or "", uploaded_by="agent",
    )
    parts = [attachments_pb2.UploadRequest(header=header)]
    parts += [attachments_pb2.UploadRequest(chunk=data[i:i + UPLOAD_CHUNK]) for i in range(0, len(data), UPLOAD_CHUNK)]
    stored = call(tool, client.stubs().attachments.Upload, iter(parts), allow=(grpc.StatusCode.NOT_FOUND,))
    if stored is None:
        raise Refused(tool_error(f"{tool}: unknown task {tid}"))
    return ok(task_id=tid, attachment_id=stored.id, size=stored.size)


def _attach_target(args: dict) -> str:
    """The task an attach tool writes to: the argument, else the worker's own task; a worker
    may attach only to its own task (Hermes's ownership guard)."""
    tid = args.get("task_id") or client.worker_task()
    if not tid:
        raise Refused(tool_error(NO_TASK))
    if refused := ownership(tid):
        raise Refused(refused)
    return tid


def handle_attach(args: dict, **kw) -> str:
    """kanban_attach: an inline (base64) file, through Attachments.Upload."""
    try:
        tid = _attach_target(args)
        filename = args.get("filename")
        if not filename or not str(filename).strip():
            return tool_error("filename is required")
        content_b64 = args.get("content_base64")
        if not content_b64 or not str(content_b64).strip():
            return tool_error("content_base64 is required")
        try:
            data = base64.b64decode(str(content_b64), validate=True)
        except (binascii.Error, ValueError) as e:
            return tool_error(f"content_base64 is not valid base64: {e}")
        return _attach_bytes("kanban_attach", tid, str(filename), data, args.get("content_type"))
    except Refused as refused:
        return refused.result


def handle_attach_url(args: dict, **kw) -> str:
    """kanban_attach_url: fetched by Hermes's own guarded downloader (http/https only, every
    hop checked against private and metadata addresses, Hermes's size cap), then uploaded."""
    from hermes_cli import kanban_db as kb
    from tools.kanban_tools import _download_url_with_cap

    try:
        tid = _attach_target(args)
        url = args.get("url")
        if not url or not str(url).strip():
            return tool_error("url is required")
        url = str(url).strip()
        filename = args.get("filename") or args.get("title")
        if not filename or not str(filename).strip():
            leaf = unquote(urlparse(url).path.rsplit("/", 1)[-1]).strip()
            filename = leaf or "download"
        try:
            data, fetched_type = _download_url_with_cap(url, kb.KANBAN_ATTACHMENT_MAX_BYTES)
        except ValueError as e:
            return tool_error(f"kanban_attach_url: {e}")
        except Exception as e:
            return tool_error(f"kanban_attach_url: failed to fetch {url}: {e}")
        return _attach_bytes("kanban_attach_url", tid, str(filename), data, args.get("content_type") or fetched_type)
    except Refused as refused:
        return refused.result


def handle_attachments(args: dict, **kw) -> str:
    """kanban_attachments: Attachments.List, in Hermes's shape (read-only, any task). The bytes
    are in kanband, not on this machine's disk, so `stored_path` is null; `id` is kanband's
    attachment id."""
    try:
        tid = args.get("task_id") or client.worker_task()
        if not tid:
            return tool_error(NO_TASK)
        detail("kanban_attachments", tid, args.get("board"), recent_events=1)
        listed = call(
            "kanban_attachments", client.stubs().attachments.List,
            attachments_pb2.ListAttachmentsRequest(task_id=tid),
        )
        return json.dumps({
            "ok": True,
            "task_id": tid,
            "attachments": [
                {
                    "id": a.id,
                    "filename": a.name,
                    "content_type": a.media_type or None,
                    "size": a.size,
                    "uploaded_by": a.uploaded_by or None,
                    "stored_path": None,
                    "created_at": a.created_at.seconds,
                }
                for a in listed.attachments
            ],
        })
    except Refused as refused:
        return refused.result


_auto_lock = threading.Lock()
_auto_last = 0.0


def heartbeat_current_worker_from_env() -> bool:
    """Stands in for Hermes's auto-heartbeat bridge (`tools.kanban_tools.
    heartbeat_current_worker_from_env`), which the agent loop calls on activity and which would
    otherwise open a Hermes SQLite board: a progress heartbeat on the worker's claim, at most
    once a minute, never raising. True when a call was made."""
    global _auto_last
    tid, token = client.worker_task(), client.claim_token()
    if not tid or not token:
        return False
    with _auto_lock:
        now = time.monotonic()
        if _auto_last and now - _auto_last < AUTO_HEARTBEAT_INTERVAL_SECONDS:
            return False
        _auto_last = now
    try:
        client.stubs().leases.Heartbeat(
            lease_pb2.HeartbeatRequest(claim_token=token), timeout=client.CALL_TIMEOUT_SECONDS
        )
    except Exception:
        pass
    return True
