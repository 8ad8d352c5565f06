// The board page: signs in, routes between the board, a task and the machines view (by the
// URL's fragment), and keeps what is on screen current from the event stream.

import { attempt, get, notify, post, Refusal, setCsrf } from "./api.js";
import { Board } from "./board.js";
import { replace } from "./dom.js";
import { showMachines } from "./machines.js";
import { showTask } from "./task.js";

const $ = (id) => document.getElementById(id);
const views = ["signin", "board", "task", "machines"];

let me = null;
let board = null;
let stream = null;
let streamBoard = null;
let route = { view: "board" };

function show(view) {
  for (const v of views) $(v).hidden = v !== view;
  $("nav-board").toggleAttribute("aria-current", view === "board" || view === "task");
  $("nav-machines").toggleAttribute("aria-current", view === "machines");
  if ($("nav-board").hasAttribute("aria-current")) $("nav-board").setAttribute("aria-current", "page");
  if ($("nav-machines").hasAttribute("aria-current")) $("nav-machines").setAttribute("aria-current", "page");
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "task" && parts[1]) return { view: "task", id: parts[1] };
  if (parts[0] === "machines") return { view: "machines" };
  return { view: "board", board: parts[0] === "board" && parts[1] ? parts[1] : null };
}

function filters() {
  const form = new FormData($("filters"));
  return {
    board: form.get("board") || "default",
    assignee: (form.get("assignee") || "").trim(),
    tenant: (form.get("tenant") || "").trim(),
    q: (form.get("q") || "").trim(),
    archived: form.get("archived") === "on",
  };
}

/** Follows the event stream of `slug` from the newest event on, resuming where it left off. */
async function follow(slug) {
  if (stream && streamBoard === slug) return;
  stream?.close();
  const head = await get("/api/events/head");
  streamBoard = slug;
  stream = new EventSource(`/api/events?board=${encodeURIComponent(slug)}&after=${head.id}`);
  stream.addEventListener("open", () => $("live").classList.add("on"));
  stream.addEventListener("error", () => $("live").classList.remove("on"));
  stream.addEventListener("kanban", (message) => {
    const event = JSON.parse(message.data);
    window.dispatchEvent(new CustomEvent("kanband-event", { detail: event }));
  });
}

window.addEventListener("kanband-event", ({ detail: event }) => {
  if (event.kind === "board_reset" && board) { board.load(); return; }
  if (!event.taskId) return;
  if (route.view === "board" && board) board.refresh(event.taskId);
  if (route.view === "task" && route.id === event.taskId) showTask($("task"), route.id, me.canAct);
});

async function loadBoards(selected) {
  const list = await attempt(() => get("/api/boards", { archived: filters().archived ? 1 : "" }));
  const select = $("board-select");
  const boards = list?.boards ?? [{ slug: "default" }];
  replace(select, boards.map((b) => {
    const option = document.createElement("option");
    option.value = b.slug;
    option.textContent = b.displayName && b.displayName !== b.slug ? `${b.displayName} (${b.slug})` : b.slug;
    return option;
  }));
  select.value = selected && boards.some((b) => b.slug === selected) ? selected : "default";
}

async function render() {
  route = parseRoute();
  if (route.view === "board") {
    show("board");
    if (route.board && route.board !== $("board-select").value) await loadBoards(route.board);
    const f = filters();
    board = new Board($("columns"), f, me.canAct);
    await follow(f.board);
    await board.load();
  } else if (route.view === "task") {
    show("task");
    await showTask($("task"), route.id, me.canAct);
  } else {
    show("machines");
    await showMachines($("machines-body"));
  }
  document.body.dataset.ready = "true";
  // User Timing mark of the first complete screen (the board benchmark reads it).
  if (!performance.getEntriesByName("kanband-ready").length) performance.mark("kanband-ready");
}

async function signIn() {
  try {
    me = await get("/api/me");
  } catch (error) {
    if (error instanceof Refusal && error.status === 401) {
      show("signin");
      document.body.dataset.ready = "true";
      return false;
    }
    throw error;
  }
  setCsrf(me.csrf);
  $("me").textContent = `${me.name} (${me.role})`;
  $("create").hidden = !me.canAct;
  if (!me.canAct) $("create").remove();
  return true;
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = new FormData(e.target).get("token");
  if (await attempt(() => post("/api/signin", { token }))) {
    if (await signIn()) { await loadBoards(null); await render(); }
  }
});

$("filters").addEventListener("submit", async (e) => {
  e.preventDefault();
  const slug = filters().board;
  if (location.hash !== `#/board/${slug}`) location.hash = `#/board/${slug}`;
  else await render();
});
$("board-select").addEventListener("change", () => { location.hash = `#/board/${filters().board}`; });

$("create-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(e.target);
  const request = {
    board: filters().board,
    title: data.get("title"),
    body: data.get("body"),
    assignee: data.get("assignee"),
    priority: Number(data.get("priority") || 0),
    tenant: data.get("tenant"),
    parents: String(data.get("parents") || "").split(/[\s,]+/).filter(Boolean),
  };
  if (data.get("triage") === "on") request.initialStatus = "TASK_STATUS_TRIAGE";
  const created = await attempt(() => post("/api/tasks", request));
  if (created) {
    e.target.reset();
    notify(`Created ${created.task.id}`, "info");
    board?.place(created.task, true);
  }
});

window.addEventListener("hashchange", () => render().catch((error) => notify(String(error))));

// Times on cards ("renewed 3 s ago") are refreshed from the lease registry every few seconds.
setInterval(() => { if (route.view === "board" && board && !document.hidden) board.refreshClaims(); }, 3000);

(async () => {
  if (await signIn()) {
    await loadBoards(parseRoute().board);
    await render();
  }
})().catch((error) => notify(String(error)));
