// A small Markdown renderer for untrusted text (task bodies and comments are written by
// agents). It builds DOM nodes and sets text with text nodes only: nothing is ever parsed as
// HTML, and a link is made only for http and https URLs (anything else, `javascript:`
// included, stays text).
//
// Supported: paragraphs, ATX headings, fenced code blocks, bullet and numbered lists, block
// quotes, and inline code, **bold**, *emphasis*, [links](http://...) and bare http(s) URLs.

import { el } from "./dom.js";

/** Returns a fragment holding `source` rendered. */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) { i++; continue; }
    const fence = line.match(/^\s*(```|~~~)/);
    if (fence) {
      const code = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) code.push(lines[i++]);
      i++;
      fragment.append(el("pre", {}, el("code", {}, code.join("\n"))));
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      // Headings inside a task start at h3: the page and the task title own h1 and h2.
      const level = Math.min(6, heading[1].length + 2);
      fragment.append(el(`h${level}`, {}, inline(heading[2].replace(/\s+#+\s*$/, ""))));
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
      fragment.append(el("blockquote", {}, renderMarkdown(quoted.join("\n"))));
      continue;
    }
    const bullet = /^\s*[-*+]\s+/;
    const numbered = /^\s*\d{1,9}[.)]\s+/;
    if (bullet.test(line) || numbered.test(line)) {
      const marker = bullet.test(line) ? bullet : numbered;
      const list = el(marker === bullet ? "ul" : "ol");
      while (i < lines.length && marker.test(lines[i])) {
        list.append(el("li", {}, inline(lines[i++].replace(marker, ""))));
      }
      fragment.append(list);
      continue;
    }
    const paragraph = [];
    while (
      i < lines.length && !/^\s*$/.test(lines[i]) && !/^(#{1,6})\s/.test(lines[i]) &&
      !/^\s*(```|~~~|>)/.test(lines[i]) && !bullet.test(lines[i]) && !numbered.test(lines[i])
    ) paragraph.push(lines[i++].trim());
    fragment.append(el("p", {}, inline(paragraph.join(" "))));
  }
  return fragment;
}

/** The URL if it is an absolute http or https URL, else null. */
export function safeUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function link(text, href) {
  const url = safeUrl(href);
  if (!url) return null;
  return el("a", { href: url, rel: "noopener noreferrer nofollow", target: "_blank" }, text);
}

const INLINE = /(`+)([^`]+?)\1|\*\*([^*]+?)\*\*|\*([^*\s][^*]*?)\*|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/;

/** Inline spans of one block: an array of nodes and strings. */
function inline(text) {
  const out = [];
  let rest = text;
  while (rest) {
    const m = rest.match(INLINE);
    if (!m) { out.push(rest); break; }
    if (m.index > 0) out.push(rest.slice(0, m.index));
    if (m[2] !== undefined) out.push(el("code", {}, m[2]));
    else if (m[3] !== undefined) out.push(el("strong", {}, inline(m[3])));
    else if (m[4] !== undefined) out.push(el("em", {}, inline(m[4])));
    else if (m[5] !== undefined) out.push(link(m[5], m[6]) ?? m[0]);
    else out.push(link(m[7], m[7]) ?? m[7]);
    rest = rest.slice(m.index + m[0].length);
  }
  return out;
}
