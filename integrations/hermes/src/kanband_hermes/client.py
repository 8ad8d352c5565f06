"""Where kanband is and who is calling: the address, the gRPC stubs, the worker's identity from
the environment its supervisor set, and gRPC errors turned into tool error text.

A worker started by `kanband-gateway` finds `KANBAN_ADDR` (`unix:/path` or `http://host:port`),
`KANBAN_CLAIM_TOKEN`, `KANBAN_RUN_ID`, `KANBAN_BOARD` and the `HERMES_KANBAN_*` names Hermes's
own tools read. An orchestrator profile (no claim) takes the address from `KANBAN_ADDR` or
from `plugins.entries.kanband.addr` in its config.yaml, else kanband's default address.

Every call carries a credential as `authorization: Bearer ...` metadata (kanband needs one over
TCP): `KANBAN_TOKEN`, else the first line of the file `KANBAN_TOKEN_FILE` names, else over TCP
the worker's own `KANBAN_CLAIM_TOKEN`, which lets it act on its own claim only.
"""

from __future__ import annotations

import collections
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


def credential() -> Optional[str]:
    """The bearer credential: `KANBAN_TOKEN`, else the file `KANBAN_TOKEN_FILE`, else over TCP
    the claim token the supervisor handed this worker (over the Unix socket kanband's own user
    needs none)."""
    token = os.environ.get("KANBAN_TOKEN", "").strip()
    if token:
        return token
    path = os.environ.get("KANBAN_TOKEN_FILE", "").strip()
    if path:
        with open(path, encoding="utf-8") as f:
            first = f.readline().strip()
        if first:
            return first
    return None if resolve_addr().startswith("unix:") else claim_token()


class _Details(
    collections.namedtuple(
        "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


class Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details):
        metadata = list(details.metadata or []) + [self._header]
        return _Details(
            details.method, details.timeout, metadata, details.credentials,
            details.wait_for_ready, details.compression,
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


@dataclass
class Stubs:
    """The kanban.v1 stubs the tools use, on one channel."""

    addr: str
    tasks: task_pb2_grpc.TasksStub
    leases: lease_pb2_grpc.LeasesStub
    notifications: notifications_pb2_grpc.NotificationsStub
    attachments: attachments_pb2_grpc.AttachmentsStub


_lock = threading.Lock()
_stubs: dict[tuple[str, Optional[str]], Stubs] = {}


def stubs() -> Stubs:
    """Stubs for the current address and credential; one channel per pair per process."""
    addr = resolve_addr()
    token = credential()
    with _lock:
        found = _stubs.get((addr, token))
        if found is None:
            target, options = grpc_target(addr)
            channel = grpc.insecure_channel(target, options=options)
            if token:
                channel = grpc.intercept_channel(channel, Bearer(token))
            found = Stubs(
                addr=addr,
                tasks=task_pb2_grpc.TasksStub(channel),
                leases=lease_pb2_grpc.LeasesStub(channel),
                notifications=notifications_pb2_grpc.NotificationsStub(channel),
                attachments=attachments_pb2_grpc.AttachmentsStub(channel),
            )
            _stubs[(addr, token)] = found
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
