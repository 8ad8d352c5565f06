"""What the plugin tests share: a real kanband subprocess, a Hermes home with the plugin
enabled, claims taken the way a supervisor takes them, and environments to call tools in.

`KANBAND_BIN` names the kanband binary (scripts/test builds it); kanband serves a temporary
data directory on a free TCP port and a socket, and is ended by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import uuid

import grpc

from kanband_hermes.client import Bearer
from kanband_hermes.pb.kanban.v1 import (
    attachments_pb2,
    attachments_pb2_grpc,
    lease_pb2,
    lease_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
)

READY = re.compile(r"kanband ready: data dir .* listening on (http://\S+) (unix:\S+) admin token (\S+)")

CONFIG_ALLOWED = """\
toolsets: [kanban]
plugins:
  enabled: [kanband]
  entries:
    kanband:
      allow_tool_override: true
"""
CONFIG_NOT_ALLOWED = """\
toolsets: [kanban]
plugins:
  enabled: [kanband]
"""


class Kanband:
    """A kanband process on a temporary data directory."""

    def __init__(self) -> None:
        binary = os.environ.get("KANBAND_BIN")
        if not binary or not pathlib.Path(binary).is_file():
            raise RuntimeError(f"KANBAND_BIN must name the built kanband binary (got {binary!r})")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="kanband-hermes-"))
        self.process = subprocess.Popen(
            [binary, "--data-dir", str(self.dir / "data"), "--listen", "127.0.0.1:0",
             "--socket", str(self.dir / "k.sock"), "--http", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.process.stdout.readline()
        found = READY.search(line)
        if not found:
            self.stop()
            raise RuntimeError(f"kanband did not report ready: {line!r}")
        self.tcp_addr, self.unix_addr = found.group(1), found.group(2)
        # TCP needs a token: the admin token kanband wrote at its first start.
        self.admin_token = pathlib.Path(found.group(3)).read_text().strip()
        channel = grpc.intercept_channel(
            grpc.insecure_channel(self.tcp_addr[len("http://"):]),
            Bearer(self.admin_token),
        )
        self.tasks = task_pb2_grpc.TasksStub(channel)
        self.leases = lease_pb2_grpc.LeasesStub(channel)
        self.attachments = attachments_pb2_grpc.AttachmentsStub(channel)

    def stop(self) -> None:
        """Ends kanband (by its pid) and removes its directory."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def create(self, **fields) -> task_pb2.Task:
        """A task made directly over gRPC (the way an operator would)."""
        return self.tasks.CreateTask(task_pb2.CreateTaskRequest(**fields), timeout=10).task

    def get(self, task_id: str) -> task_pb2.TaskDetail:
        return self.tasks.GetTask(task_pb2.GetTaskRequest(id=task_id, recent_events=1000), timeout=10)

    def download(self, attachment_id: str) -> tuple[attachments_pb2.Attachment, bytes]:
        """An attachment and its bytes, over Attachments.Download."""
        first, data = None, b""
        for message in self.attachments.Download(attachments_pb2.DownloadRequest(id=attachment_id), timeout=10):
            first = first or message.attachment
            data += message.chunk
        return first, data

    def claim(self, profile: str) -> lease_pb2.Grant:
        """Takes a claim as a supervisor does: OpenSession for `profile`, then Acquire."""
        session = self.leases.OpenSession(
            lease_pb2.OpenSessionRequest(machine_id="hermes-tests", profiles=[profile], slots=4, ttl_ms=300_000),
            timeout=10,
        )
        grant = self.leases.Acquire(lease_pb2.AcquireRequest(session_id=session.id, wait_ms=10_000), timeout=20)
        if not grant.HasField("grant"):
            raise RuntimeError(f"no grant for profile {profile}")
        return grant.grant


def profile() -> str:
    """A profile name no other test uses, so each claim finds exactly its own task."""
    return f"p{uuid.uuid4().hex[:12]}"


def worker_env(kanband: Kanband, grant: lease_pb2.Grant, addr: str | None = None) -> dict:
    """The environment kanband-gateway gives a worker for `grant`: the names
    gateway-client/src/supervisor/grant.rs sets that the plugin reads (HERMES_PROFILE is not
    among them)."""
    return {
        "KANBAN_ADDR": addr or kanband.tcp_addr,
        "KANBAN_BOARD": grant.task.board,
        "KANBAN_TASK": grant.task.id,
        "KANBAN_RUN_ID": grant.run_id,
        "KANBAN_CLAIM_TOKEN": grant.claim_token,
        "KANBAN_PROFILE": grant.profile,
        "HERMES_KANBAN_TASK": grant.task.id,
        "HERMES_KANBAN_RUN_ID": grant.run_id,
        "HERMES_KANBAN_BOARD": grant.task.board,
    }


def hermes_worker_env(task_id: str, run_id: int, profile_name: str) -> dict:
    """The environment Hermes's own dispatcher gives a worker (for the built-in tools)."""
    return {
        "HERMES_KANBAN_TASK": task_id,
        "HERMES_KANBAN_RUN_ID": str(run_id),
        "HERMES_PROFILE": profile_name,
    }


WORKER_NAMES = [
    "KANBAN_ADDR", "KANBAN_BOARD", "KANBAN_TASK", "KANBAN_RUN_ID", "KANBAN_CLAIM_TOKEN",
    "KANBAN_PROFILE", "HERMES_KANBAN_TASK", "HERMES_KANBAN_RUN_ID", "HERMES_KANBAN_BOARD",
    "HERMES_PROFILE", "KANBAN_TOKEN", "KANBAN_TOKEN_FILE",
]


@contextlib.contextmanager
def environment(values: dict):
    """Runs the block with exactly `values` set among the worker variables."""
    saved = {name: os.environ.get(name) for name in set(WORKER_NAMES) | set(values)}
    for name in WORKER_NAMES:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dispatch(name: str, args: dict, env: dict) -> dict:
    """Calls a tool through Hermes's registry in `env`; the parsed JSON result."""
    from tools.registry import registry

    with environment(env):
        return json.loads(registry.dispatch(name, args))


def call_builtin(handler, args: dict, env: dict) -> dict:
    """Calls one of Hermes's own handlers (kept from before the plugin loaded) in `env`."""
    with environment(env):
        return json.loads(handler(args))
