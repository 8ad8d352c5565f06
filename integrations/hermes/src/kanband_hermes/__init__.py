"""Hermes Agent plugin: every `kanban_*` tool of Hermes 0.19, backed by kanband over gRPC.

Hermes loads this package through the `hermes_agent.plugins` entry point `kanband` and calls
`register(ctx)`. Each tool is registered under its Hermes name in the `kanban` toolset with
`override=True`, which Hermes allows only with `plugins.entries.kanband.allow_tool_override:
true` in config.yaml. The schema, availability check and emoji are taken from Hermes's own
registration, so the model sees exactly what it saw before; only the handler changes.

Layout (every import points down):

- `board_tools`, `worker_tools`: the handlers.
- `context`: kanban_show's `worker_context` text. `shapes`: kanband messages as Hermes JSON.
- `common`: result and error JSON, calls, Hermes's guards. `client`: address, stubs, identity.
- `pb`: the kanban.v1 client generated from proto/ (see regen.py).
"""

from __future__ import annotations

import logging

from kanband_hermes import board_tools, worker_tools

__version__ = "0.1.0"

logger = logging.getLogger(__name__)

# Hermes 0.19's kanban tools, each with its handler here and the argument names it reads
# (register() refuses to load against a Hermes whose schemas name others).
TOOLS = {
    "kanban_show": (board_tools.handle_show, {"task_id", "board"}),
    "kanban_list": (board_tools.handle_list, {"assignee", "status", "tenant", "include_archived", "limit", "board"}),
    "kanban_complete": (
        worker_tools.handle_complete,
        {"task_id", "summary", "metadata", "result", "created_cards", "artifacts", "board"},
    ),
    "kanban_block": (worker_tools.handle_block, {"task_id", "reason", "kind", "board"}),
    "kanban_heartbeat": (worker_tools.handle_heartbeat, {"task_id", "note", "board"}),
    "kanban_comment": (board_tools.handle_comment, {"task_id", "body", "board"}),
    "kanban_attach": (worker_tools.handle_attach, {"task_id", "filename", "content_base64", "content_type", "board"}),
    "kanban_attach_url": (worker_tools.handle_attach_url, {"task_id", "url", "filename", "content_type", "board"}),
    "kanban_attachments": (worker_tools.handle_attachments, {"task_id", "board"}),
    "kanban_create": (
        board_tools.handle_create,
        {
            "title", "assignee", "body", "parents", "tenant", "priority", "workspace_kind",
            "workspace_path", "project", "triage", "idempotency_key", "max_runtime_seconds",
            "initial_status", "skills", "goal_mode", "goal_max_turns", "board",
        },
    ),
    "kanban_unblock": (board_tools.handle_unblock, {"task_id", "board"}),
    "kanban_link": (board_tools.handle_link, {"parent_id", "child_id", "board"}),
}


def register(ctx) -> None:
    """Replaces Hermes's kanban tools with kanband-backed ones (called by Hermes's plugin
    manager). Raises, so that the plugin fails to load and Hermes keeps its own tools, when the
    installed Hermes registers a different set of kanban tools or arguments."""
    # Importing Hermes's module registers its tools now, so a later import cannot put them back
    # over ours (a same-toolset registration replaces silently).
    import tools.kanban_tools as builtin
    from tools.registry import registry

    registered = {name for name in registry.get_all_tool_names() if name.startswith("kanban_")}
    if registered != set(TOOLS):
        raise RuntimeError(
            f"kanband plugin: Hermes registers kanban tools {sorted(registered)}, "
            f"this plugin replaces {sorted(TOOLS)}"
        )
    entries = {}
    for name, (_, args) in TOOLS.items():
        entry = registry.get_entry(name)
        known = set((entry.schema.get("parameters") or {}).get("properties") or {})
        if known != args:
            raise RuntimeError(
                f"kanband plugin: Hermes's {name} takes {sorted(known)}, this plugin handles {sorted(args)}"
            )
        entries[name] = entry
    for name, (handler, _) in TOOLS.items():
        entry = entries[name]
        ctx.register_tool(
            name=name,
            toolset=entry.toolset,
            schema=entry.schema,
            handler=handler,
            check_fn=entry.check_fn,
            emoji=entry.emoji,
            override=True,
        )
    # The agent loop heartbeats a worker's board row through this module attribute (it
    # imports it at call time); pointed at kanband it records progress on the claim instead of
    # opening a Hermes SQLite board. Not a plugin API: Hermes has no hook for it.
    builtin.heartbeat_current_worker_from_env = worker_tools.heartbeat_current_worker_from_env
    logger.info("kanband plugin: %d kanban tools now go to kanband", len(TOOLS))
