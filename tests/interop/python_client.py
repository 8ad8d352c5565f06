#!/usr/bin/env python3
"""A Python gRPC client of kanband, for the interop test (tests/tests/python.rs).

Generates the kanban.v1 stubs from proto/ at run time with grpcio-tools, then, against the
address given: checks health through grpcio-health-checking, opens a session, keeps it alive
over the bidirectional KeepAlive stream, acquires a claim, completes it, and checks that a
second completion is refused with the structured `kanban-lease-lost` trailer. Prints one JSON
line with what it saw; exits non-zero on the first surprise.
"""

import argparse
import collections
import importlib
import json
import os
import pathlib
import queue
import sys
import tempfile

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

PROTO_ROOT = pathlib.Path(__file__).resolve().parents[2] / "proto" / "proto"


def generate(out: pathlib.Path):
    """Compiles every kanban.v1 .proto into `out` and returns the imported modules."""
    files = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "kanban" / "v1").glob("*.proto"))
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    )
    if code != 0:
        sys.exit(f"grpc_tools.protoc failed with {code}")
    sys.path.insert(0, str(out))
    names = ["task", "lease"]
    return {n: importlib.import_module(f"kanban.v1.{n}_pb2") for n in names} | {
        f"{n}_grpc": importlib.import_module(f"kanban.v1.{n}_pb2_grpc") for n in names
    }


class _Details(
    collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Sends `authorization: Bearer <token>` on every call (kanband needs it over TCP)."""

    def __init__(self, token):
        self.header = ("authorization", f"Bearer {token}")

    def _with_token(self, details):
        metadata = list(details.metadata or []) + [self.header]
        return _Details(
            details.method, details.timeout, metadata, details.credentials,
            details.wait_for_ready, details.compression,
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


def expect(condition, what):
    if not condition:
        sys.exit(f"interop: {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True, help="host:port or unix:/path (token: KANBAN_TOKEN)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pb = generate(pathlib.Path(tmp))
        # Over a Unix socket grpc-core would send the socket path as :authority, which is not a
        # valid HTTP/2 authority and is refused (PROTOCOL_ERROR); name a plain host instead.
        options = [("grpc.default_authority", "localhost")] if args.addr.startswith("unix:") else []
        channel = grpc.insecure_channel(args.addr, options=options)
        token = os.environ.get("KANBAN_TOKEN")
        if token:
            channel = grpc.intercept_channel(channel, Bearer(token))
        seen = {}

        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", "kanban.v1.Leases", "kanban.v1.Tasks"]:
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
            expect(status == health_pb2.HealthCheckResponse.SERVING, f"health of {service!r} is {status}")
        seen["health"] = "SERVING"

        tasks = pb["task_grpc"].TasksStub(channel)
        leases = pb["lease_grpc"].LeasesStub(channel)
        created = tasks.CreateTask(pb["task"].CreateTaskRequest(title="from python", assignee="py"), timeout=10)
        task_id = created.task.id
        expect(created.created and created.task.status == pb["task"].TASK_STATUS_READY, f"created {created}")

        session = leases.OpenSession(
            pb["lease"].OpenSessionRequest(machine_id="python", profiles=["py"], slots=1, ttl_ms=10000), timeout=10
        )
        outbox = queue.Queue()

        def requests():
            while (item := outbox.get()) is not None:
                yield item

        replies = leases.KeepAlive(requests())
        outbox.put(pb["lease"].KeepAliveRequest(session_id=session.id))
        first = next(replies)
        expect(first.WhichOneof("event") == "renewed", f"first keep-alive answer {first}")

        grant = leases.Acquire(pb["lease"].AcquireRequest(session_id=session.id, wait_ms=5000), timeout=10).grant
        expect(grant.task.id == task_id and grant.epoch == 1, f"grant {grant}")

        outbox.put(pb["lease"].KeepAliveRequest(session_id=session.id))
        second = next(replies)
        expect(list(second.renewed.claim_tokens) == [grant.claim_token], f"second keep-alive {second}")
        seen["keepalive"] = "renewed"

        done = leases.Complete(pb["lease"].CompleteRequest(claim_token=grant.claim_token, summary="ok"), timeout=10)
        expect(done.status == pb["task"].TASK_STATUS_DONE, f"after complete {done.status}")
        seen["complete"] = "done"

        # A retried Complete (its reply lost) is answered as already recorded...
        again, call = leases.Complete.with_call(
            pb["lease"].CompleteRequest(claim_token=grant.claim_token, summary="ok"), timeout=10
        )
        headers = dict(call.initial_metadata() or ())
        expect(again.status == pb["task"].TASK_STATUS_DONE, f"retried complete {again.status}")
        expect(headers.get("kanban-already-recorded") == "true", f"retried complete headers {headers}")
        seen["retried"] = "already recorded"
        # ...while a different outcome for the ended claim is fenced.
        try:
            leases.Block(pb["lease"].HolderBlockRequest(claim_token=grant.claim_token, reason="late"), timeout=10)
            sys.exit("interop: a Block after Complete was accepted")
        except grpc.RpcError as err:
            trailers = dict(err.trailing_metadata() or ())
            expect(err.code() == grpc.StatusCode.ABORTED, f"block after complete: {err.code()}")
            expect(trailers.get("kanban-lease-lost") == "unknown", f"trailers {trailers}")
            seen["refused"] = trailers["kanban-lease-lost"]

        outbox.put(None)
        leases.CloseSession(pb["lease"].CloseSessionRequest(session_id=session.id), timeout=10)
        channel.close()
        print(json.dumps({"task": task_id, "epoch": grant.epoch, **seen}))


if __name__ == "__main__":
    main()
