// The task view: body, links, comments, attachments to download, runs, the event timeline,
// why it is not running, and the actions the signed-in identity may take.

import { attempt, get, post } from "./api.js";
import { statusName } from "./board.js";
import { ago, duration, el, replace } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

function outcomeName(outcome) {
  return outcome ? outcome.replace("RUN_OUTCOME_", "").toLowerCase() : "running";
}

function taskLink(id) {
  return el("a", { href: `#/task/${encodeURIComponent(id)}` }, id);
}

function when(ts) {
  return ts ? el("time", { datetime: ts, title: ts }, ago(ts)) : "-";
}

/** Renders task `id` into `root`; `canAct` shows the action forms. */
export async function showTask(root, id, canAct) {
  const [detail, why, files] = await Promise.all([
    attempt(() => get(`/api/tasks/${encodeURIComponent(id)}`, { recentEvents: 200 })),
    get(`/api/tasks/${encodeURIComponent(id)}/why`).catch(() => null),
    get(`/api/tasks/${encodeURIComponent(id)}/attachments`).catch(() => null),
  ]);
  if (!detail) { replace(root, el("p", {}, "No such task.")); return; }
  const task = detail.task;
  const path = `/api/tasks/${encodeURIComponent(id)}`;
  const facts = [
    ["status", el("span", { class: "status" }, statusName(task.status))],
    ["board", el("a", { href: `#/board/${encodeURIComponent(task.board)}` }, task.board)],
    ["assignee", task.assignee || "unassigned"],
    ["priority", String(task.priority ?? 0)],
    ["epoch", String(task.epoch ?? 0)],
    ["tenant", task.tenant || "-"],
    ["created", [when(task.createdAt), task.createdBy ? ` by ${task.createdBy}` : ""]],
    ["failures", String(task.consecutiveFailures ?? 0)],
  ];
  if (task.blockReason) facts.push(["block reason", task.blockReason]);
  if (task.lastFailureError) facts.push(["last error", task.lastFailureError]);
  if (task.summary) facts.push(["summary", task.summary]);

  const sections = [
    el("p", {}, el("a", { href: `#/board/${encodeURIComponent(task.board)}` }, "← board")),
    el("h2", { id: "task-title" }, task.title),
    el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("h3", {}, "Description"),
    el("div", { class: "body", id: "task-body" }, task.body ? renderMarkdown(task.body) : el("p", {}, "(none)")),
  ];
  if (why) {
    sections.push(el("h3", {}, "Why is this not running?"),
      el("div", { class: "why", id: "task-why" },
        el("p", {}, why.summary),
        why.sessions?.length ? el("ul", {}, why.sessions.map((s) =>
          el("li", {}, `${s.machineId} (${s.sessionId}): ${s.wouldGrant ? "would be granted next" : s.whyNot || "claimable after the tasks before it"}`))) : null));
  }
  sections.push(
    el("h3", {}, "Parents and children"),
    el("p", {}, "Parents: ", (detail.parents ?? []).length ? detail.parents.map((p) => [taskLink(p), " "]) : "none"),
    el("p", {}, "Children: ", (detail.children ?? []).length ? detail.children.map((c) => [taskLink(c), " "]) : "none"),
    el("h3", {}, "Comments"),
    el("div", { id: "task-comments" }, (detail.comments ?? []).map((c) =>
      el("article", { class: "comment" },
        el("header", {}, c.author || "anonymous", " · ", when(c.createdAt)),
        renderMarkdown(c.body)))),
    el("h3", {}, "Attachments"),
    attachmentsList(files?.attachments ?? []),
    el("h3", {}, "Runs"),
    runsTable(detail.runs ?? []),
    el("h3", {}, "Events"),
    eventsTable(detail.recentEvents ?? []),
  );
  if (canAct) sections.splice(5, 0, actions(task, path, () => showTask(root, id, canAct)));
  replace(root, sections);
}

/** Bytes for people: "812 B", "4.2 KiB", "3.1 MiB". */
function size(bytes) {
  const n = Number(bytes ?? 0);
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function attachmentsList(files) {
  if (!files.length) return el("p", { id: "task-attachments" }, "No attachments.");
  return el("ul", { id: "task-attachments" }, files.map((a) => el("li", {},
    el("a", { href: `/api/attachments/${encodeURIComponent(a.id)}`, download: a.name }, a.name),
    ` · ${size(a.size)} · ${a.mediaType} · ${a.uploadedBy || "anonymous"} · `, when(a.createdAt))));
}

function runsTable(runs) {
  if (!runs.length) return el("p", {}, "No runs yet.");
  return el("table", { id: "task-runs" },
    el("thead", {}, el("tr", {}, ["run", "epoch", "machine", "session", "profile", "started", "duration", "outcome", "summary"].map((h) => el("th", {}, h)))),
    el("tbody", {}, runs.map((r) => {
      const end = r.endedAt ? new Date(r.endedAt) : new Date();
      const ms = r.startedAt ? end - new Date(r.startedAt) : 0;
      return el("tr", {},
        [r.id, String(r.epoch ?? 0), r.machineId, r.sessionId, r.profile].map((v) => el("td", {}, v ?? "")),
        el("td", {}, when(r.startedAt)),
        el("td", {}, duration(ms) + (r.endedAt ? "" : " so far")),
        el("td", { class: "outcome" }, outcomeName(r.outcome), r.exitCode !== undefined ? ` (exit ${r.exitCode})` : ""),
        el("td", {}, r.summary || r.error || ""));
    })));
}

function eventsTable(events) {
  if (!events.length) return el("p", {}, "No events.");
  return el("table", { id: "task-events" },
    el("thead", {}, el("tr", {}, ["#", "when", "kind", "by", "note", "details"].map((h) => el("th", {}, h)))),
    el("tbody", {}, events.slice().reverse().map((e) => el("tr", {},
      el("td", {}, e.id), el("td", {}, when(e.createdAt)), el("td", {}, e.kind),
      el("td", { class: "identity" }, e.identity ? `${e.identity} (${e.identityRole ?? ""})` : ""),
      el("td", { class: "note" }, e.actor && e.actor !== e.identity ? e.actor : ""),
      el("td", {}, Object.entries(e.details ?? {}).map(([k, v]) => `${k}=${v}`).join(" "))))));
}

/** A small form: `fields` are inputs, `send` turns the form's values into a POST. */
function form(label, fields, send, after) {
  const node = el("form", { "aria-label": label }, fields, el("button", { type: "submit" }, label));
  node.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(node));
    if (await attempt(() => send(data))) after();
  });
  return node;
}

function actions(task, path, after) {
  const input = (name, props = {}, label = name) => el("label", {}, label, el("input", { name, ...props }));
  return el("details", { class: "actions", open: true }, el("summary", {}, "Actions"),
    form("Comment", el("label", {}, "comment", el("textarea", { name: "body", rows: 3, required: true })),
      (d) => post(`${path}/comment`, { body: d.body }), after),
    form("Assign", input("assignee", { value: task.assignee ?? "" }),
      (d) => post(`${path}/assign`, { assignee: d.assignee }), after),
    form("Set priority", input("priority", { type: "number", min: -1000, max: 1000, value: task.priority ?? 0 }),
      (d) => post(`${path}/update`, { priority: Number(d.priority) }), after),
    form("Block", [input("reason"), el("label", {}, "kind", el("select", { name: "kind" },
      ["NONE", "NEEDS_INPUT", "CAPABILITY", "TRANSIENT", "DEPENDENCY"].map((k) =>
        el("option", { value: `BLOCK_KIND_${k}` }, k.toLowerCase().replace("_", " ")))))],
      (d) => post(`${path}/block`, { reason: d.reason, kind: d.kind }), after),
    form("Unblock", [], () => post(`${path}/unblock`), after),
    form("Promote", [], () => post(`${path}/promote`), after),
    form("Schedule", input("delaySeconds", { type: "number", min: 0, value: 0 }, "wake up after (s, 0: never)"),
      (d) => post(`${path}/schedule`, { delaySeconds: String(d.delaySeconds || 0) }), after),
    form("Request review", [], () => post(`${path}/reopen-review`), after),
    form("Reclaim", input("graceSeconds", { type: "number", min: 0, max: 3600, value: 0 }, "grace (s)"),
      (d) => post(`${path}/reclaim`, { graceSeconds: Number(d.graceSeconds || 0) }), after),
    form("Archive", [], () => post(`${path}/archive`), after));
}
