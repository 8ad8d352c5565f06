// The board view: one column per status, paged, with cards kept current by the event stream.

import { attempt, get, post } from "./api.js";
import { ago, el, replace } from "./dom.js";

/** Statuses in column order; `archived` is shown only when asked. */
export const STATUSES = [
  "TASK_STATUS_TRIAGE", "TASK_STATUS_TODO", "TASK_STATUS_SCHEDULED", "TASK_STATUS_READY",
  "TASK_STATUS_RUNNING", "TASK_STATUS_BLOCKED", "TASK_STATUS_REVIEW", "TASK_STATUS_DONE",
  "TASK_STATUS_ARCHIVED",
];

/** `TASK_STATUS_READY` -> `ready`. */
export function statusName(status) {
  return (status ?? "TASK_STATUS_UNSPECIFIED").replace("TASK_STATUS_", "").toLowerCase();
}

/** Cards per column page: enough to fill a screen, small enough that 10,000 tasks stay fast. */
const PAGE = 50;

/**
 * One board on screen. `filters` holds board, assignee, tenant, q and archived; `canAct` says
 * whether the signed-in identity may change anything (a reader sees no actions).
 */
export class Board {
  constructor(root, filters, canAct) {
    this.root = root;
    this.filters = filters;
    this.canAct = canAct;
    /** status -> {list, more, nextPageToken, ids: Set} */
    this.columns = new Map();
    /** task id -> task (proto JSON) for every card on screen. */
    this.tasks = new Map();
    /** task id -> live claim (from /api/machines) for running cards. */
    this.claims = new Map();
  }

  statuses() {
    return STATUSES.filter((s) => s !== "TASK_STATUS_ARCHIVED" || this.filters.archived);
  }

  /** Loads the first page of every column. */
  async load() {
    replace(this.root);
    this.columns.clear();
    this.tasks.clear();
    for (const status of this.statuses()) this.root.append(this.column(status));
    await Promise.all([this.refreshClaims(), ...this.statuses().map((s) => this.loadPage(s))]);
  }

  column(status) {
    const list = el("ol", { "aria-label": statusName(status) });
    const count = el("span", { class: "count" });
    const more = el("button", { class: "more secondary", type: "button", hidden: true,
      onclick: () => this.loadPage(status) }, "Show more");
    const section = el("section", { class: "column", dataset: { status } },
      el("h2", {}, statusName(status), count), list, more);
    if (this.canAct) {
      section.addEventListener("dragover", (e) => { e.preventDefault(); section.classList.add("drop"); });
      section.addEventListener("dragleave", () => section.classList.remove("drop"));
      section.addEventListener("drop", (e) => {
        e.preventDefault();
        section.classList.remove("drop");
        const id = e.dataTransfer.getData("text/x-kanband-task");
        if (id) this.move(id, status);
      });
    }
    this.columns.set(status, { list, more, count, nextPageToken: "", ids: new Set(), complete: false });
    return section;
  }

  async loadPage(status) {
    const column = this.columns.get(status);
    const page = await attempt(() => get(`/api/boards/${encodeURIComponent(this.filters.board)}/tasks`, {
      status, assignee: this.filters.assignee, tenant: this.filters.tenant, q: this.filters.q,
      pageSize: PAGE, pageToken: column.nextPageToken,
    }));
    if (!page) return;
    for (const task of page.tasks ?? []) this.place(task, false);
    column.nextPageToken = page.nextPageToken ?? "";
    column.complete = !column.nextPageToken;
    column.more.hidden = column.complete;
    this.counts();
  }

  counts() {
    for (const column of this.columns.values()) {
      column.count.textContent = `${column.ids.size}${column.complete ? "" : "+"}`;
    }
  }

  /** Whether `task` passes the filters (the server filters pages; events need the same test). */
  matches(task) {
    const f = this.filters;
    if (task.board !== f.board) return false;
    if (f.assignee && task.assignee !== f.assignee) return false;
    if (f.tenant && task.tenant !== f.tenant) return false;
    if (f.q) {
      const q = f.q.toLowerCase();
      if (!(task.title ?? "").toLowerCase().includes(q) && !task.id.includes(q)) return false;
    }
    return true;
  }

  /** Puts `task` in its column (or takes it off the board); `fresh` marks a live change. */
  place(task, fresh) {
    this.remove(task.id);
    const column = this.columns.get(task.status);
    if (!column || !this.matches(task)) { this.counts(); return; }
    this.tasks.set(task.id, task);
    column.ids.add(task.id);
    const card = this.card(task);
    if (fresh) card.classList.add("fresh");
    // Columns are in creation order (ids are ordered); a card past the loaded page of a
    // column that has more goes first, so that a new task is seen at once.
    const after = [...column.list.children].find((node) => node.dataset.taskId > task.id);
    if (after) column.list.insertBefore(card, after);
    else if (column.complete) column.list.append(card);
    else column.list.prepend(card);
    this.counts();
  }

  remove(id) {
    if (!this.tasks.has(id)) return;
    this.tasks.delete(id);
    for (const column of this.columns.values()) column.ids.delete(id);
    this.root.querySelector(`[data-task-id="${CSS.escape(id)}"]`)?.remove();
  }

  /** Re-reads one task after an event about it. */
  async refresh(id) {
    try {
      const detail = await get(`/api/tasks/${encodeURIComponent(id)}`, { recentEvents: 1 });
      if (detail.task.status === "TASK_STATUS_RUNNING") await this.refreshClaims();
      this.place(detail.task, true);
    } catch (error) {
      if (error.status === 404) { this.remove(id); this.counts(); }
    }
  }

  async refreshClaims() {
    const machines = await get("/api/machines").catch(() => null);
    if (!machines) return;
    this.claims.clear();
    for (const session of machines.sessions ?? []) {
      for (const claim of session.claims ?? []) this.claims.set(claim.taskId, { ...claim, session });
    }
    for (const task of this.tasks.values()) {
      if (task.status === "TASK_STATUS_RUNNING") {
        const old = this.root.querySelector(`[data-task-id="${CSS.escape(task.id)}"]`);
        old?.replaceWith(this.card(task));
      }
    }
  }

  card(task) {
    const facts = [];
    const fact = (term, value, cls) => facts.push(el("dt", { class: cls }, term), el("dd", { class: cls }, value));
    fact("assignee", task.assignee || "unassigned");
    fact("priority", String(task.priority ?? 0));
    if (task.status === "TASK_STATUS_RUNNING") {
      const claim = this.claims.get(task.id);
      fact("holder", claim ? `${claim.session.session.machineId} · ${claim.session.session.id}` : "…", "holder");
      fact("epoch", String(task.epoch ?? 0), "epoch");
      if (claim) {
        fact("renewed", ago(claim.lastRenewedAt), "renewed");
        fact("progress", ago(claim.lastHeartbeatAt), "progress");
      }
    }
    if (task.consecutiveFailures) fact("failures", String(task.consecutiveFailures), "failures");
    if (task.blockReason && ["TASK_STATUS_BLOCKED", "TASK_STATUS_TRIAGE", "TASK_STATUS_TODO"].includes(task.status)) {
      fact("blocked", task.blockReason, "block");
    }
    const card = el("li", { class: "card", dataset: { taskId: task.id, status: task.status },
      draggable: this.canAct ? "true" : undefined },
      el("h3", {}, el("a", { href: `#/task/${encodeURIComponent(task.id)}` }, task.title)),
      el("dl", {}, facts));
    if (this.canAct) {
      card.addEventListener("dragstart", (e) => {
        e.dataTransfer.setData("text/x-kanband-task", task.id);
        e.dataTransfer.effectAllowed = "move";
      });
      const menu = el("select", { "aria-label": "Move to", class: "move",
        onchange: () => { if (menu.value) this.move(task.id, menu.value); } },
        el("option", { value: "" }, "Move to…"),
        STATUSES.filter((s) => s !== task.status).map((s) => el("option", { value: s }, statusName(s))));
      card.append(menu);
    }
    return card;
  }

  /** Asks kanband for the transition that moves a card to `to`; a refusal is shown. */
  async move(id, to) {
    const task = this.tasks.get(id);
    const moved = await attempt(() => post(`/api/tasks/${encodeURIComponent(id)}/move`, {
      from: task?.status, to,
    }));
    if (moved) this.place(moved, true);
    else if (task) this.place(task, false);
  }
}
