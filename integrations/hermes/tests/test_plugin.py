"""The plugin inside a real Hermes Agent 0.19: loaded by Hermes's own plugin manager, each tool
called through Hermes's tool registry against a live kanband, and compared with Hermes's own
tool doing the same on its own SQLite board (HERMES_KANBAN_HOME in a temporary directory).

Run with hermes-agent 0.19.0 and this package installed, and KANBAND_BIN naming the kanband
binary: `python -m unittest discover -s tests` (scripts/test does it).
"""

from __future__ import annotations

import base64
import os
import pathlib
import shutil
import tempfile
import unittest

ROOT = pathlib.Path(tempfile.mkdtemp(prefix="kanband-hermes-home-"))
os.environ["HERMES_HOME"] = str(ROOT / "home")
os.environ["HERMES_KANBAN_HOME"] = str(ROOT / "hermes-board")
for _name in ("HERMES_SESSION_ID", "HERMES_SESSION_KEY", "HERMES_TENANT", "KANBAN_ADDR"):
    os.environ.pop(_name, None)
(ROOT / "home").mkdir()

import harness  # noqa: E402
from harness import call_builtin, dispatch, hermes_worker_env, profile, worker_env  # noqa: E402

KANBAN_TOOLS = [
    "kanban_attach", "kanban_attach_url", "kanban_attachments", "kanban_block", "kanban_comment",
    "kanban_complete", "kanban_create", "kanban_heartbeat", "kanban_link", "kanban_list",
    "kanban_show", "kanban_unblock",
]

KANBAND = None
BUILTIN = {}
BUILTIN_SCHEMAS = {}
WITHOUT_OPT_IN = {}


def _config(text: str) -> None:
    (ROOT / "home" / "config.yaml").write_text(text)


def _load_plugins() -> dict:
    from hermes_cli.plugins import get_plugin_manager

    manager = get_plugin_manager()
    manager.discover_and_load(force=True)
    return {p["name"]: p for p in manager.list_plugins()}


def setUpModule():
    global KANBAND
    import tools.kanban_tools  # noqa: F401  (Hermes's own tools register on import)
    from tools.registry import registry

    for name in KANBAN_TOOLS:
        entry = registry.get_entry(name)
        BUILTIN[name] = entry.handler
        BUILTIN_SCHEMAS[name] = entry.schema
    _config(harness.CONFIG_NOT_ALLOWED)
    WITHOUT_OPT_IN["plugins"] = _load_plugins()
    WITHOUT_OPT_IN["handlers"] = {n: registry.get_entry(n).handler for n in KANBAN_TOOLS}
    _config(harness.CONFIG_ALLOWED)
    _load_plugins()
    KANBAND = harness.Kanband()


def tearDownModule():
    if KANBAND is not None:
        KANBAND.stop()
    shutil.rmtree(ROOT, ignore_errors=True)


def orchestrator(addr: str | None = None) -> dict:
    """An orchestrator profile's environment: kanband's address, no task, no claim."""
    env = {"KANBAN_ADDR": addr or KANBAND.tcp_addr, "HERMES_PROFILE": "orchestrator"}
    if not env["KANBAN_ADDR"].startswith("unix:"):
        # An operator's token over TCP (the socket, as kanband's own user, needs none).
        env["KANBAN_TOKEN"] = KANBAND.admin_token
    return env


def hermes_board():
    from hermes_cli import kanban_db

    return kanban_db, kanban_db.connect()


def hermes_claimed(title: str, assignee: str, **fields) -> tuple[str, int]:
    """A task on Hermes's own board, claimed as its dispatcher claims: (task id, run id)."""
    kb, conn = hermes_board()
    try:
        tid = kb.create_task(conn, title=title, assignee=assignee, **fields)
        task = kb.claim_task(conn, tid)
        return tid, task.current_run_id
    finally:
        conn.close()


def kanband_claimed(title: str, **fields):
    """A task on kanband claimed by a test supervisor session: the grant."""
    name = profile()
    KANBAND.create(title=title, assignee=name, **fields)
    return KANBAND.claim(name)


def keys(value) -> object:
    """The key structure of a JSON value (dicts by key, lists by their first element)."""
    if isinstance(value, dict):
        return {k: keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys(value[0])] if value else []
    return None


class Loading(unittest.TestCase):
    def test_the_plugin_manager_loads_the_entry_point_and_replaces_every_kanban_tool(self):
        from hermes_cli.plugins import get_plugin_manager
        from tools.registry import registry

        loaded = {p["name"]: p for p in get_plugin_manager().list_plugins()}["kanband"]
        self.assertTrue(loaded["enabled"], loaded)
        self.assertEqual(loaded["source"], "entrypoint")
        self.assertEqual(sorted(n for n in registry.get_all_tool_names() if n.startswith("kanban_")), KANBAN_TOOLS)
        for name in KANBAN_TOOLS:
            entry = registry.get_entry(name)
            self.assertTrue(entry.handler.__module__.startswith("kanband_hermes."), name)
            self.assertIsNot(entry.handler, BUILTIN[name])
            self.assertEqual(entry.toolset, "kanban")
            self.assertEqual(entry.schema, BUILTIN_SCHEMAS[name], name)

    def test_without_allow_tool_override_hermes_keeps_its_own_tools(self):
        plugin = WITHOUT_OPT_IN["plugins"]["kanband"]
        self.assertFalse(plugin["enabled"])
        self.assertIn("allow_tool_override", plugin["error"])
        for name in KANBAN_TOOLS:
            self.assertIs(WITHOUT_OPT_IN["handlers"][name], BUILTIN[name], name)

    def test_the_agent_loops_auto_heartbeat_goes_to_the_claim(self):
        import tools.kanban_tools as builtin

        grant = kanband_claimed("auto heartbeat")
        with harness.environment(worker_env(KANBAND, grant)):
            self.assertTrue(builtin.heartbeat_current_worker_from_env())
        run = KANBAND.get(grant.task.id).runs[-1]
        self.assertTrue(run.HasField("last_heartbeat_at"))


class WorkerTools(unittest.TestCase):
    def test_complete_records_result_summary_and_metadata_on_the_claim(self):
        grant = kanband_claimed("complete me")
        hermes_tid, hermes_run = hermes_claimed("complete me", "coder")
        args = {"summary": "did it", "result": "42", "metadata": {"changed_files": ["a.rs"], "tests_run": 3}}
        ours = dispatch("kanban_complete", args, worker_env(KANBAND, grant))
        theirs = call_builtin(BUILTIN["kanban_complete"], args, hermes_worker_env(hermes_tid, hermes_run, "coder"))
        self.assertEqual(ours, {"ok": True, "task_id": grant.task.id, "run_id": grant.run_id})
        self.assertEqual(keys(ours), keys(theirs))

        found = KANBAND.get(grant.task.id)
        self.assertEqual(harness.task_pb2.TaskStatus.Name(found.task.status), "TASK_STATUS_DONE")
        self.assertEqual((found.task.result, found.task.summary), ("42", "did it"))
        self.assertEqual(harness.task_pb2.RunOutcome.Name(found.runs[-1].outcome), "RUN_OUTCOME_COMPLETED")

        shown = dispatch("kanban_show", {"task_id": grant.task.id}, orchestrator())
        hermes_shown = call_builtin(BUILTIN["kanban_show"], {"task_id": hermes_tid}, {})
        self.assertEqual(shown["runs"][-1]["metadata"], args["metadata"])
        self.assertEqual(shown["runs"][-1]["metadata"], hermes_shown["runs"][-1]["metadata"])
        self.assertEqual(shown["runs"][-1]["status"], hermes_shown["runs"][-1]["status"])
        self.assertEqual(shown["task"]["status"], hermes_shown["task"]["status"])

        # kanband answers the same complete retried (as after a lost reply) as already
        # recorded, where Hermes's own tool errors; a different outcome is refused by both.
        again = dispatch("kanban_complete", args, worker_env(KANBAND, grant))
        self.assertEqual(again, ours)
        blocked = {"reason": "too late", "kind": "needs_input"}
        refused = dispatch("kanban_block", blocked, worker_env(KANBAND, grant))
        self.assertIn("claim is no longer live (unknown)", refused["error"])
        self.assertIn("error", call_builtin(BUILTIN["kanban_complete"], args, hermes_worker_env(hermes_tid, hermes_run, "coder")))

    def test_block_routes_by_kind_and_unblock_returns_the_task(self):
        grant = kanband_claimed("block me")
        hermes_tid, hermes_run = hermes_claimed("block me", "coder")
        args = {"reason": "which database?", "kind": "needs_input"}
        ours = dispatch("kanban_block", args, worker_env(KANBAND, grant))
        theirs = call_builtin(BUILTIN["kanban_block"], args, hermes_worker_env(hermes_tid, hermes_run, "coder"))
        self.assertEqual(keys(ours), keys(theirs))
        self.assertEqual((ours["status"], ours["block_kind"], ours["run_id"]), ("blocked", "needs_input", grant.run_id))
        self.assertEqual((ours["status"], ours["block_kind"]), (theirs["status"], theirs["block_kind"]))
        task = KANBAND.get(grant.task.id).task
        self.assertEqual(task.block_reason, "which database?")
        self.assertEqual(harness.task_pb2.BlockKind.Name(task.block_kind), "BLOCK_KIND_NEEDS_INPUT")

        ours = dispatch("kanban_unblock", {"task_id": grant.task.id}, orchestrator())
        theirs = call_builtin(BUILTIN["kanban_unblock"], {"task_id": hermes_tid}, {})
        self.assertEqual(ours, {"ok": True, "task_id": grant.task.id, "status": "ready"})
        self.assertEqual(keys(ours), keys(theirs))
        self.assertEqual(ours["status"], theirs["status"])

        refused = dispatch("kanban_unblock", {"task_id": grant.task.id}, worker_env(KANBAND, grant))
        self.assertIn("orchestrator-only", refused["error"])

    def test_a_dependency_block_waits_in_todo(self):
        grant = kanband_claimed("wait for it")
        hermes_tid, hermes_run = hermes_claimed("wait for it", "coder")
        args = {"reason": "needs the schema task", "kind": "dependency"}
        ours = dispatch("kanban_block", args, worker_env(KANBAND, grant))
        theirs = call_builtin(BUILTIN["kanban_block"], args, hermes_worker_env(hermes_tid, hermes_run, "coder"))
        self.assertEqual((ours["status"], theirs["status"]), ("todo", "todo"))

    def test_an_orchestrator_blocks_a_task_that_is_not_running(self):
        task = KANBAND.create(title="park this", assignee=profile())
        ours = dispatch("kanban_block", {"task_id": task.id, "reason": "later", "kind": "transient"}, orchestrator())
        self.assertEqual((ours["status"], ours["block_kind"], ours["run_id"]), ("blocked", "transient", None))

    def test_heartbeat_records_progress_on_the_run(self):
        grant = kanband_claimed("long job")
        hermes_tid, hermes_run = hermes_claimed("long job", "coder")
        ours = dispatch("kanban_heartbeat", {"note": "epoch 3 of 10"}, worker_env(KANBAND, grant))
        theirs = call_builtin(BUILTIN["kanban_heartbeat"], {"note": "epoch 3 of 10"}, hermes_worker_env(hermes_tid, hermes_run, "coder"))
        self.assertEqual(ours, {"ok": True, "task_id": grant.task.id})
        self.assertEqual(keys(ours), keys(theirs))
        self.assertEqual(KANBAND.get(grant.task.id).runs[-1].last_heartbeat_note, "epoch 3 of 10")

    def test_a_worker_may_not_touch_another_task(self):
        grant = kanband_claimed("mine")
        other = KANBAND.create(title="not mine", assignee=profile())
        hermes_tid, hermes_run = hermes_claimed("mine", "coder")
        for name, args in [("kanban_complete", {"summary": "x"}), ("kanban_block", {"reason": "x"}), ("kanban_heartbeat", {})]:
            ours = dispatch(name, {**args, "task_id": other.id}, worker_env(KANBAND, grant))
            theirs = call_builtin(BUILTIN[name], {**args, "task_id": "t_other"}, hermes_worker_env(hermes_tid, hermes_run, "coder"))
            self.assertEqual(ours["error"].replace(other.id, "t_other").replace(grant.task.id, "SELF"),
                             theirs["error"].replace(hermes_tid, "SELF"), name)
        self.assertEqual(harness.task_pb2.TaskStatus.Name(KANBAND.get(other.id).task.status), "TASK_STATUS_READY")

    def test_without_a_claim_complete_and_heartbeat_say_why(self):
        task = KANBAND.create(title="nobody holds this", assignee=profile())
        for name in ("kanban_complete", "kanban_heartbeat"):
            refused = dispatch(name, {"task_id": task.id, "summary": "x"}, orchestrator())
            self.assertIn("not supported by the kanband backend", refused["error"], name)
            self.assertTrue(refused["unsupported"])

    def test_attach_stores_the_file_as_hermes_does_and_lists_it_in_hermes_shape(self):
        grant = kanband_claimed("attach")
        hermes_tid, hermes_run = hermes_claimed("attach", "coder")
        data = bytes(range(256)) * 9000  # over 2 MiB: several upload chunks
        args = {"filename": "../../etc/report.bin", "content_base64": base64.b64encode(data).decode(),
                "content_type": "application/octet-stream"}
        ours = dispatch("kanban_attach", args, worker_env(KANBAND, grant))
        theirs = call_builtin(BUILTIN["kanban_attach"], args, hermes_worker_env(hermes_tid, hermes_run, "coder"))
        self.assertEqual(keys(ours), keys(theirs))
        self.assertEqual((ours["ok"], ours["task_id"], ours["size"]), (True, grant.task.id, len(data)))
        stored, got = KANBAND.download(ours["attachment_id"])
        self.assertEqual(got, data)
        self.assertEqual((stored.name, stored.uploaded_by), ("report.bin", "agent"), "Hermes's safe leaf name")

        listed = dispatch("kanban_attachments", {}, worker_env(KANBAND, grant))
        hermes_listed = call_builtin(BUILTIN["kanban_attachments"], {}, hermes_worker_env(hermes_tid, hermes_run, "coder"))
        self.assertEqual(keys(listed), keys(hermes_listed))
        [entry] = listed["attachments"]
        [hermes_entry] = hermes_listed["attachments"]
        for key in ("filename", "content_type", "size", "uploaded_by"):
            self.assertEqual(entry[key], hermes_entry[key], key)
        self.assertEqual(entry["id"], ours["attachment_id"])
        kinds = [e.kind for e in KANBAND.get(grant.task.id).recent_events]
        self.assertIn("attached", kinds)

    def test_a_workers_attach_is_fenced_and_limited_to_its_own_task(self):
        grant = kanband_claimed("fenced attach")
        other = KANBAND.create(title="not mine", assignee=profile())
        hermes_tid, hermes_run = hermes_claimed("mine", "coder")
        args = {"filename": "a.txt", "content_base64": "aGk="}
        ours = dispatch("kanban_attach", {**args, "task_id": other.id}, worker_env(KANBAND, grant))
        theirs = call_builtin(BUILTIN["kanban_attach"], {**args, "task_id": "t_other"}, hermes_worker_env(hermes_tid, hermes_run, "coder"))
        self.assertEqual(ours["error"].replace(other.id, "t_other").replace(grant.task.id, "SELF"),
                         theirs["error"].replace(hermes_tid, "SELF"))
        bad = dispatch("kanban_attach", {"filename": "a.txt", "content_base64": "not base64!"}, worker_env(KANBAND, grant))
        hermes_bad = call_builtin(BUILTIN["kanban_attach"], {"filename": "a.txt", "content_base64": "not base64!"},
                                  hermes_worker_env(hermes_tid, hermes_run, "coder"))
        self.assertEqual(bad, hermes_bad)
        self.assertTrue(dispatch("kanban_complete", {"summary": "done"}, worker_env(KANBAND, grant))["ok"])
        late = dispatch("kanban_attach", args, worker_env(KANBAND, grant))
        self.assertIn("claim is no longer live", late["error"])
        listed = KANBAND.attachments.List(harness.attachments_pb2.ListAttachmentsRequest(task_id=grant.task.id), timeout=10)
        self.assertEqual(list(listed.attachments), [], "nothing stored")
        # An orchestrator (no claim) attaches to any task.
        done = dispatch("kanban_attach", {**args, "task_id": other.id}, orchestrator())
        self.assertTrue(done["ok"], done)
        missing = dispatch("kanban_attach", {**args, "task_id": "t_0000000000000000"}, orchestrator())
        self.assertEqual(missing["error"], "kanban_attach: unknown task t_0000000000000000")

    def test_attach_url_fetches_with_hermes_downloader(self):
        import http.server
        import threading
        from unittest import mock

        body = b"fetched over http\n" * 100

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/files/notes.txt"
            grant = kanband_claimed("attach a url")
            hermes_tid, hermes_run = hermes_claimed("attach a url", "coder")
            blocked = dispatch("kanban_attach_url", {"url": url}, worker_env(KANBAND, grant))
            hermes_blocked = call_builtin(BUILTIN["kanban_attach_url"], {"url": url}, hermes_worker_env(hermes_tid, hermes_run, "coder"))
            self.assertEqual(blocked, hermes_blocked, "loopback is refused by Hermes's SSRF guard")
            with mock.patch("tools.url_safety.is_safe_url", return_value=True):
                ours = dispatch("kanban_attach_url", {"url": url}, worker_env(KANBAND, grant))
                theirs = call_builtin(BUILTIN["kanban_attach_url"], {"url": url}, hermes_worker_env(hermes_tid, hermes_run, "coder"))
            self.assertEqual(keys(ours), keys(theirs))
            stored, got = KANBAND.download(ours["attachment_id"])
            self.assertEqual(got, body)
            self.assertEqual((stored.name, stored.media_type), ("notes.txt", "text/plain"))
            scheme = dispatch("kanban_attach_url", {"url": "file:///etc/passwd"}, worker_env(KANBAND, grant))
            self.assertIn("only http/https", scheme["error"])
        finally:
            server.shutdown()
            server.server_close()


class BoardTools(unittest.TestCase):
    def test_create_with_parents_waits_for_them(self):
        who = profile()
        parent = dispatch("kanban_create", {"title": "schema", "assignee": who}, orchestrator())
        child = dispatch(
            "kanban_create",
            {"title": "migrate", "assignee": who, "parents": [parent["task_id"]], "priority": 7,
             "tenant": "acme", "skills": ["sql-review"], "body": "move it"},
            orchestrator(),
        )
        h_parent = call_builtin(BUILTIN["kanban_create"], {"title": "schema", "assignee": "coder"}, {"HERMES_PROFILE": "orchestrator"})
        h_child = call_builtin(
            BUILTIN["kanban_create"],
            {"title": "migrate", "assignee": "coder", "parents": [h_parent["task_id"]], "priority": 7,
             "tenant": "acme", "skills": ["sql-review"], "body": "move it"},
            {"HERMES_PROFILE": "orchestrator"},
        )
        self.assertEqual(keys(child), keys(h_child))
        self.assertEqual((parent["status"], child["status"]), ("ready", "todo"))
        self.assertEqual((h_parent["status"], h_child["status"]), ("ready", "todo"))
        found = KANBAND.get(child["task_id"])
        self.assertEqual(list(found.parents), [parent["task_id"]])
        self.assertEqual((found.task.priority, found.task.tenant, found.task.created_by, found.task.body),
                         (7, "acme", "orchestrator", "move it"))
        self.assertEqual(list(found.task.worker_options.skills), ["sql-review"])

        triaged = dispatch("kanban_create", {"title": "spec me", "assignee": who, "triage": True}, orchestrator())
        self.assertEqual(triaged["status"], "triage")
        refused = dispatch("kanban_create", {"title": "loop", "assignee": who, "goal_mode": True}, orchestrator())
        self.assertIn("goal_mode", refused["error"])

    def test_a_worker_creates_follow_ups_in_its_own_workspace(self):
        grant = kanband_claimed("fan out", workspace=harness.task_pb2.Workspace(
            kind=harness.task_pb2.WORKSPACE_KIND_DIR, path="/srv/repo"))
        made = dispatch("kanban_create", {"title": "follow-up", "assignee": "reviewer", "parents": [grant.task.id]},
                        worker_env(KANBAND, grant))
        task = KANBAND.get(made["task_id"]).task
        self.assertEqual((task.workspace.path, task.created_by), ("/srv/repo", grant.profile))
        self.assertEqual(made["status"], "todo")

    def test_comment_is_authored_by_the_profile(self):
        grant = kanband_claimed("discuss")
        ours = dispatch("kanban_comment", {"task_id": grant.task.id, "body": "found the bug"}, worker_env(KANBAND, grant))
        h_tid, h_run = hermes_claimed("discuss", "coder")
        theirs = call_builtin(BUILTIN["kanban_comment"], {"task_id": h_tid, "body": "found the bug"}, hermes_worker_env(h_tid, h_run, "coder"))
        self.assertEqual(keys(ours), keys(theirs))
        comment = KANBAND.get(grant.task.id).comments[-1]
        self.assertEqual((comment.id, comment.author, comment.body), (ours["comment_id"], grant.profile, "found the bug"))

    def test_show_has_hermes_keys_and_a_worker_context(self):
        grant = kanband_claimed("show me", body="the body text")
        env = worker_env(KANBAND, grant)
        dispatch("kanban_comment", {"task_id": grant.task.id, "body": "a note"}, env)
        dispatch("kanban_heartbeat", {"note": "working"}, env)
        ours = dispatch("kanban_show", {}, env)
        h_tid, h_run = hermes_claimed("show me", "coder", body="the body text")
        h_env = hermes_worker_env(h_tid, h_run, "coder")
        call_builtin(BUILTIN["kanban_comment"], {"task_id": h_tid, "body": "a note"}, h_env)
        theirs = call_builtin(BUILTIN["kanban_show"], {}, h_env)
        for part in ("task", "comments", "runs"):
            self.assertEqual(keys(ours[part]), keys(theirs[part]), part)
        self.assertEqual(set(ours), set(theirs))
        self.assertEqual(set(ours["events"][0]), set(theirs["events"][0]))
        self.assertEqual(ours["task"]["status"], "running")
        self.assertEqual(ours["runs"][-1]["status"], theirs["runs"][-1]["status"])
        for text in (f"# Kanban task {grant.task.id}: show me", "## Body", "the body text", "## Comment thread", "a note"):
            self.assertIn(text, ours["worker_context"])
        self.assertIn("not found", dispatch("kanban_show", {"task_id": "t_0000000000000000"}, orchestrator())["error"])

    def test_show_over_the_unix_socket(self):
        task = KANBAND.create(title="via socket", assignee=profile())
        shown = dispatch("kanban_show", {"task_id": task.id}, orchestrator(KANBAND.unix_addr))
        self.assertEqual(shown["task"]["title"], "via socket")

    def test_list_filters_and_orders_like_hermes(self):
        who = profile()
        low = KANBAND.create(title="low", assignee=who, priority=1)
        high = KANBAND.create(title="high", assignee=who, priority=9, parents=[low.id])
        ours = dispatch("kanban_list", {"assignee": who}, orchestrator())
        kb, conn = hermes_board()
        try:
            first = kb.create_task(conn, title="low", assignee="lister", priority=1)
            kb.create_task(conn, title="high", assignee="lister", priority=9, parents=[first])
        finally:
            conn.close()
        theirs = call_builtin(BUILTIN["kanban_list"], {"assignee": "lister"}, {})
        self.assertEqual(keys(ours), keys(theirs))
        self.assertEqual([t["title"] for t in ours["tasks"]], [t["title"] for t in theirs["tasks"]])
        self.assertEqual([t["id"] for t in ours["tasks"]], [high.id, low.id])
        self.assertEqual(ours["tasks"][0]["parents"], [low.id])
        self.assertEqual(ours["tasks"][1]["children"], [high.id])
        limited = dispatch("kanban_list", {"assignee": who, "limit": 1}, orchestrator())
        self.assertEqual((limited["count"], limited["truncated"], limited["next_limit"]), (1, True, 2))
        todo = dispatch("kanban_list", {"assignee": who, "status": "todo"}, orchestrator())
        self.assertEqual([t["id"] for t in todo["tasks"]], [high.id])

    def test_link_demotes_the_child_and_refuses_cycles(self):
        who = profile()
        a = KANBAND.create(title="a", assignee=who)
        b = KANBAND.create(title="b", assignee=who)
        ours = dispatch("kanban_link", {"parent_id": a.id, "child_id": b.id}, orchestrator())
        self.assertEqual(ours, {"ok": True, "parent_id": a.id, "child_id": b.id})
        self.assertEqual(harness.task_pb2.TaskStatus.Name(KANBAND.get(b.id).task.status), "TASK_STATUS_TODO")
        self.assertEqual(dispatch("kanban_link", {"parent_id": a.id, "child_id": b.id}, orchestrator()), ours)
        self.assertIn("error", dispatch("kanban_link", {"parent_id": b.id, "child_id": a.id}, orchestrator()))

        kb, conn = hermes_board()
        try:
            ha, hb = kb.create_task(conn, title="a", assignee="x"), kb.create_task(conn, title="b", assignee="x")
        finally:
            conn.close()
        theirs = call_builtin(BUILTIN["kanban_link"], {"parent_id": ha, "child_id": hb}, {})
        self.assertEqual(keys(ours), keys(theirs))
        self.assertEqual(call_builtin(BUILTIN["kanban_link"], {"parent_id": ha, "child_id": hb}, {})["ok"], True)
        self.assertIn("error", call_builtin(BUILTIN["kanban_link"], {"parent_id": hb, "child_id": ha}, {}))


if __name__ == "__main__":
    unittest.main()
