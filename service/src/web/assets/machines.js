// The machines view: supervisor sessions with their slots and claims, waiting pollers, and the
// service's stats.

import { attempt, get } from "./api.js";
import { ago, el, replace } from "./dom.js";

/** Renders the machines view into `root`. */
export async function showMachines(root) {
  const data = await attempt(() => get("/api/machines"));
  if (!data) return;
  const sessions = data.sessions ?? [];
  const stats = data.stats ?? {};
  const byStatus = Object.entries(stats.tasksByStatus ?? {}).sort();
  replace(root,
    el("h3", {}, `Supervisors online: ${sessions.length}`),
    sessions.length ? el("table", { id: "sessions" },
      el("thead", {}, el("tr", {}, ["machine", "host", "session", "profiles", "slots used / free", "claims", "renewed"].map((h) => el("th", {}, h)))),
      el("tbody", {}, sessions.map((s) => {
        const used = (s.claims ?? []).length;
        const slots = s.session.slots ?? 0;
        return el("tr", {},
          el("td", {}, s.session.machineId), el("td", {}, s.session.hostname ?? ""), el("td", {}, s.session.id),
          el("td", {}, (s.session.profiles ?? []).join(", ")),
          el("td", {}, `${used} / ${Math.max(0, slots - used)}`),
          el("td", {}, (s.claims ?? []).map((c) => el("div", {},
            el("a", { href: `#/task/${encodeURIComponent(c.taskId)}` }, c.taskId), ` epoch ${c.epoch ?? 0}`,
            c.revoking ? " (being revoked)" : "", ` · progress ${ago(c.lastHeartbeatAt)}`))),
          el("td", {}, ago(s.lastRenewedAt)));
      }))) : el("p", {}, "No supervisor has a session open."),
    el("h3", {}, "Service"),
    el("dl", { id: "stats" },
      el("dt", {}, "waiting pollers"), el("dd", {}, String(data.waitingPollers ?? 0)),
      el("dt", {}, "live sessions"), el("dd", {}, stats.liveSessions ?? "0"),
      el("dt", {}, "live claims"), el("dd", {}, stats.liveClaims ?? "0"),
      el("dt", {}, "oldest ready task"), el("dd", {}, `${Number(stats.oldestReadyAgeMs ?? 0) / 1000} s`),
      el("dt", {}, "expiry lag p50 / p99 / max"),
      el("dd", {}, `${stats.expiryLag?.p50Us ?? 0} / ${stats.expiryLag?.p99Us ?? 0} / ${stats.expiryLag?.maxUs ?? 0} µs (${stats.expiryLag?.count ?? 0} expiries)`),
      byStatus.map(([k, v]) => [el("dt", {}, `tasks ${k}`), el("dd", {}, v)])));
}
