// The page's calls to kanband's JSON API. Bodies and answers are the kanban.v1 messages in
// their proto3 JSON form (what grpcurl prints); a refusal comes back as {code, message}.

let csrf = "";

/** Remembers the session's CSRF secret, sent with every mutation. */
export function setCsrf(value) {
  csrf = value;
}

/** A refusal from kanband, with the gRPC code name and its message. */
export class Refusal extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") {
    headers["content-type"] = "application/json";
    headers["x-kanband-csrf"] = csrf;
  }
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = {};
  try { json = text ? JSON.parse(text) : {}; } catch { json = { message: text }; }
  if (!response.ok) {
    throw new Refusal(response.status, json.code ?? String(response.status), json.message ?? response.statusText);
  }
  return json;
}

/** GET `path` with query parameters `query` (empty values left out). */
export function get(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, value);
  }
  const qs = params.toString();
  return call("GET", qs ? `${path}?${qs}` : path);
}

/** POST `body` (a request message) to `path`. */
export function post(path, body = {}) {
  return call("POST", path, body);
}

/** Shows a message in the page's notice line: a refusal (the default) or information. */
export function notify(message, kind = "error") {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.className = kind === "error" ? "" : "info";
  notice.hidden = !message;
}

/** Runs `action`, showing a refusal's message instead of throwing. Returns its value or null. */
export async function attempt(action) {
  try {
    const value = await action();
    notify("");
    return value;
  } catch (error) {
    notify(error instanceof Refusal ? `${error.message} (${error.code})` : String(error));
    return null;
  }
}
