"""Where kanband is and who is calling: the address, the gRPC stubs, the worker's identity from
the environment its supervisor set, and gRPC errors turned into tool error text.

A worker started by `kanband-gateway` finds `KANBAN_ADDR` (`unix:/path` or `http://host:port`),
`KANBAN_CLAIM_TOKEN`, `KANBAN_RUN_ID`, `KANBAN_BOARD` and the `HERMES_KANBAN_*` names Hermes's
own tools read. An orchestrator profile (no claim) takes the address from `KANBAN_ADDR` or
from `plugins.entries.kanband.addr` in its config.yaml, else kanband's default address.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Optional

import grpc

from kanband_hermes.pb.kanban.v1 import (
    attachments_pb2_grpc,
    lease_pb2_grpc,
    notifications_pb2_grpc,
    task_pb2_grpc,
)

PLUGIN_ID = "kanband"
DEFAULT_ADDR = "http://127.0.0.1:50051"
# Every call is short; a kanband that does not answer within this is reported, not waited on.
CALL_TIMEOUT_SECONDS = 15.0


def _config_addr() -> Optional[str]:
    try:
        from hermes_cli.config import load_config

        entries = ((load_config() or {}).get("plugins") or {}).get("entries") or {}
        addr = (entries.get(PLUGIN_ID) or {}).get("addr")
        return str(addr).strip() or None if addr else None
    except Exception:
        return None


def resolve_addr() -> str:
    """The kanband address: `KANBAN_ADDR`, else the plugin's config entry, else the default."""
    return os.environ.get("KANBAN_ADDR", "").strip() or _config_addr() or DEFAULT_ADDR


def grpc_target(addr: str) -> tuple[str, list]:
    """The grpcio target and channel options for a kanband address.

    `http://host:port` becomes `host:port`; `unix:/path` stays as it is, with a plain
    `:authority`, because grpc-core would otherwise send the socket path, which kanband's
    HTTP/2 stack refuses.
    """
    if addr.startswith("unix:"):
        return addr, [("grpc.default_authority", "localhost")]
    for scheme in ("http://", "grpc://"):
        if addr.startswith(scheme):
            return addr[len(scheme):].rstrip("/"), []
    if addr.startswith("https://"):
        raise ValueError(f"KANBAN_ADDR {addr!r}: TLS is not supported; use unix:/path or http://host:port")
    return addr, []


@dataclass
class Stubs:
    """The kanban.v1 stubs the tools use, on one channel."""

    addr: str
    tasks: task_pb2_grpc.TasksStub
    leases: lease_pb2_grpc.LeasesStub
    notifications: notifications_pb2_grpc.NotificationsStub
    attachments: attachments_pb2_grpc.AttachmentsStub


_lock = threading.Lock()
_stubs: dict[str, Stubs] = {}


def stubs() -> Stubs:
    """Stubs for the current address; one channel per address per process."""
    addr = resolve_addr()
    with _lock:
        found = _stubs.get(addr)
        if found is None:
            target, options = grpc_target(addr)
            channel = grpc.insecure_channel(target, options=options)
            found = Stubs(
                addr=addr,
                tasks=task_pb2_grpc.TasksStub(channel),
                leases=lease_pb2_grpc.LeasesStub(channel),
                notifications=notifications_pb2_grpc.NotificationsStub(channel),
                attachments=attachments_pb2_grpc.AttachmentsStub(channel),
            )
            _stubs[addr] = found
        return found


def worker_task() -> Optional[str]:
    """The task this process was spawned to work on (Hermes's `HERMES_KANBAN_TASK`)."""
    return os.environ.get("HERMES_KANBAN_TASK") or None


def claim_token() -> Optional[str]:
    """The claim token the supervisor handed this worker."""
    return os.environ.get("KANBAN_CLAIM_TOKEN") or None


def worker_run_id() -> Optional[str]:
    """The run id of this worker's claim."""
    return os.environ.get("KANBAN_RUN_ID") or os.environ.get("HERMES_KANBAN_RUN_ID") or None


def actor() -> str:
    """Who the calls are made as: the Hermes profile, as Hermes's tools stamp it, else the
    profile kanband-gateway says the claim runs as."""
    return os.environ.get("HERMES_PROFILE") or os.environ.get("KANBAN_PROFILE") or "worker"


def board(arg: Optional[str]) -> str:
    """The board a call targets: the argument, else the board the supervisor pinned, else
    kanband's default (empty)."""
    return (arg or os.environ.get("HERMES_KANBAN_BOARD") or os.environ.get("KANBAN_BOARD") or "").strip()


def describe(tool: str, err: grpc.RpcError) -> str:
    """Tool error text for a refused call: the status code and kanband's message, and for a
    lost claim the reason from the `kanban-lease-lost` trailer."""
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    if code == grpc.StatusCode.ABORTED:
        trailers = dict(err.trailing_metadata() or ()) if hasattr(err, "trailing_metadata") else {}
        reason = trailers.get("kanban-lease-lost", "unknown")
        return f"{tool}: this worker's claim is no longer live ({reason}): {details}"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"{tool}: kanband is not reachable at {resolve_addr()}: {details}"
    name = code.name if code is not None else "UNKNOWN"
    return f"{tool}: {name}: {details}"
