"""End to end: kanband, `kanband-gateway --preset hermes`, and a stand-in `hermes` on PATH that
does what a Hermes worker's agent does with the plugin's tools: Hermes's plugin manager loads
the plugin, then the stand-in calls kanban_show, kanban_heartbeat and kanban_complete through
Hermes's tool registry. Every task goes to done, and each worker saw the command line and the
environment Hermes's own dispatcher gives its workers.

The gateway binary is found beside KANBAND_BIN (scripts/test builds both).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from kanband_hermes.pb.kanban.v1 import task_pb2

STAND_IN = """\
#!{python}
# A stand-in for `hermes`: records how it was started, then works its task through the
# plugin's tools, as the agent would.
import json, os, sys

record = {{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in {names!r}}}}}
task = os.environ["HERMES_KANBAN_TASK"]
import tools.kanban_tools  # Hermes's own tools register on import
from hermes_cli.plugins import get_plugin_manager
from tools.registry import registry

get_plugin_manager().discover_and_load(force=True)
record["handler"] = registry.get_entry("kanban_complete").handler.__module__
record["show"] = json.loads(registry.dispatch("kanban_show", {{}}))
record["heartbeat"] = json.loads(registry.dispatch("kanban_heartbeat", {{"note": "halfway"}}))
record["complete"] = json.loads(
    registry.dispatch("kanban_complete", {{"summary": "done by the stand-in", "result": "ok"}})
)
path = os.path.join({log!r}, task + ".json")
with open(path + ".part", "w") as out:
    json.dump(record, out)
os.replace(path + ".part", path)  # whole or absent, for the test that waits for it
"""

SEEN = [
    "HERMES_PROFILE", "HERMES_HOME", "HERMES_TENANT", "HERMES_KANBAN_TASK", "HERMES_KANBAN_RUN_ID",
    "HERMES_KANBAN_BOARD", "HERMES_KANBAN_WORKSPACE", "HERMES_KANBAN_BRANCH", "HERMES_KANBAN_DB",
    "HERMES_TUI", "TERMINAL_CWD", "KANBAN_CLAIM_TOKEN", "KANBAN_ADDR",
]

# Long enough for the stand-in's imports of Hermes on a loaded machine.
LIMIT_S = 120


def _wait(what: str, probe, limit: float = LIMIT_S):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached within {limit} s")


class GatewayPresetTest(unittest.TestCase):
    def setUp(self):
        self.kanband = harness.Kanband()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="kanband-preset-"))
        self.gateway = None

    def tearDown(self):
        if self.gateway is not None and self.gateway.poll() is None:
            os.kill(self.gateway.pid, signal.SIGTERM)
            self.gateway.wait(timeout=60)
        self.kanband.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _gateway(self, profile: str, path: str, home: pathlib.Path) -> subprocess.Popen:
        binary = pathlib.Path(os.environ["KANBAND_BIN"]).with_name("kanband-gateway")
        env = dict(os.environ, PATH=path, HERMES_TUI="1", HERMES_KANBAN_DB="/must/not/reach",
                   RUST_BACKTRACE="1")
        self.gateway_log = self.dir / "gateway.log"
        log = open(self.gateway_log, "w")
        self.addCleanup(log.close)
        return subprocess.Popen(
            [str(binary), "--addr", self.kanband.unix_addr, "--profile", profile,
             "--slots", "2", "--preset", "hermes", "--hermes-home", str(home),
             "--workspaces", str(self.dir / "workspaces")],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )

    def _log(self) -> str:
        return self.gateway_log.read_text()[-4000:]

    def test_tasks_go_to_done_through_the_plugin_in_workers_started_like_hermes_workers(self):
        profile = harness.profile()
        home = self.dir / "hermes"
        (home / "profiles" / profile).mkdir(parents=True)
        (home / "profiles" / profile / "config.yaml").write_text(harness.CONFIG_ALLOWED)
        log = self.dir / "log"
        log.mkdir()
        bin_dir = self.dir / "bin"
        bin_dir.mkdir()
        stand_in = bin_dir / "hermes"
        stand_in.write_text(STAND_IN.format(python=sys.executable, names=SEEN, log=str(log)))
        stand_in.chmod(0o755)

        plain = self.kanband.create(title="plain", assignee=profile)
        rich = self.kanband.create(
            title="rich", assignee=profile, tenant="acme",
            worker_options={"skills": ["translation", "review"], "model": "m/x", "provider": "openrouter"},
        )
        self.gateway = self._gateway(profile, f"{bin_dir}:{os.environ['PATH']}", home)

        for task in (plain, rich):
            done = lambda t=task: self.kanband.get(t.id).task.status == task_pb2.TASK_STATUS_DONE
            try:
                _wait(f"{task.title} done", done)
            except AssertionError as err:
                raise AssertionError(f"{err}; kanband-gateway said:\n{self._log()}") from None
        # The stand-in writes its record after kanban_complete returns, so the task can be done
        # a moment before the record exists.
        for task in (plain, rich):
            _wait(f"{task.title}'s record", (log / f"{task.id}.json").exists)
        records = {t.id: json.loads((log / f"{t.id}.json").read_text()) for t in (plain, rich)}

        for task in (plain, rich):
            record = records[task.id]
            self.assertEqual(record["handler"].split(".")[0], "kanband_hermes", record)
            self.assertEqual(record["show"]["task"]["id"], task.id, record["show"])
            self.assertTrue(record["heartbeat"].get("ok"), record["heartbeat"])
            self.assertTrue(record["complete"].get("ok"), record["complete"])
            env = record["env"]
            self.assertEqual(env["HERMES_PROFILE"], profile)
            self.assertEqual(env["HERMES_HOME"], str(home / "profiles" / profile))
            self.assertEqual(env["HERMES_KANBAN_TASK"], task.id)
            self.assertTrue(env["KANBAN_CLAIM_TOKEN"].startswith("c_"))
            self.assertEqual(env["TERMINAL_CWD"], env["HERMES_KANBAN_WORKSPACE"])
            # Inherited settings that would send the worker to the TUI or to the file are gone.
            self.assertIsNone(env["HERMES_TUI"])
            self.assertIsNone(env["HERMES_KANBAN_DB"])
            detail = self.kanband.get(task.id)
            self.assertEqual(detail.task.summary, "done by the stand-in")
            self.assertEqual(detail.task.result, "ok")

        self.assertEqual(
            records[plain.id]["argv"],
            ["-p", profile, "--cli", "--accept-hooks", "chat", "-q", f"work kanban task {plain.id}"],
        )
        self.assertEqual(
            records[rich.id]["argv"],
            ["-p", profile, "--cli", "--accept-hooks", "--skills", "translation", "--skills",
             "review", "-m", "m/x", "--provider", "openrouter", "chat", "-q",
             f"work kanban task {rich.id}"],
        )
        self.assertEqual(records[rich.id]["env"]["HERMES_TENANT"], "acme")
        self.assertIsNone(records[plain.id]["env"]["HERMES_TENANT"])

    def test_a_missing_hermes_fails_the_gateway_at_start_with_a_clear_message(self):
        empty = self.dir / "empty-bin"
        empty.mkdir()
        self.gateway = self._gateway(harness.profile(), f"{empty}:/usr/bin:/bin", self.dir)
        self.gateway.wait(timeout=60)
        stderr = self.gateway_log.read_text()
        self.assertNotEqual(self.gateway.returncode, 0)
        self.assertIn("`hermes`, which is not an executable on PATH", stderr)
        self.assertIn("pip install hermes-agent", stderr)
        # One line a person can act on, even with RUST_BACKTRACE set.
        self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)


if __name__ == "__main__":
    unittest.main()
