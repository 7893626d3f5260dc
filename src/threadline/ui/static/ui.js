// threadline web UI. Plain script, no dependencies, no build step.
// Every piece of data reaches the page as text (textContent / text nodes), never as HTML, so a
// message holding <script> or <img onerror> shows those characters and runs nothing.
"use strict";

const KEY = "threadline.apiKey"; // sessionStorage only: never in a URL, gone with the tab
const PAGE = 200;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else if (name === "style") node.style.cssText = value; // CSSOM: allowed by the page's CSP
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

const page = () => document.getElementById("page");
function status(text) { document.getElementById("status").textContent = text || ""; }
function show(...nodes) { page().replaceChildren(...nodes); }
function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function headers(extra) {
  const key = sessionStorage.getItem(KEY);
  const out = Object.assign({}, extra || {});
  if (key) out.authorization = "Bearer " + key;
  return out;
}

async function api(path, options) {
  const response = await fetch("/ui/api" + path, Object.assign({}, options, { headers: headers() }));
  let body = {};
  try { body = await response.json(); } catch (e) { body = {}; }
  if (!response.ok) {
    const message = (body.error && body.error.message) || response.statusText;
    throw new HttpError(response.status, message);
  }
  return body;
}

function notFound(message) {
  document.title = "Not found - threadline";
  show(el("h1", { text: "Not found (404)" }), el("p", { text: message }),
       el("p", {}, el("a", { href: "/ui/" }, "All threads")));
}

function failed(error) {
  if (error.status === 404) return notFound(error.message);
  if (error.status === 401) {
    show(el("h1", { text: "API key needed" }),
         el("p", { text: error.message + " Type it in the API key field above; it is kept for this tab only." }));
    document.getElementById("api-key").focus();
    return;
  }
  show(el("h1", { text: "Error" }), el("p", { class: "error-note", text: error.message }));
}

// ---- the thread list: /ui/ ----
async function threadsPage() {
  document.title = "Threads - threadline";
  const params = new URLSearchParams(location.search);
  const query = params.get("q") || "";
  const list = el("ul", { class: "threads", "aria-label": "Threads" });
  const search = el("form", { role: "search", onsubmit: (e) => {
      e.preventDefault();
      const q = e.target.elements.q.value.trim();
      history.replaceState(null, "", q ? "/ui/?q=" + encodeURIComponent(q) : "/ui/");
      fill(q);
    } },
    el("label", { for: "thread-search" }, "Search threads"),
    el("input", { id: "thread-search", name: "q", type: "search", value: query }),
    el("button", { type: "submit" }, "Search"));
  show(el("h1", { text: "Threads" }), search, list);
  async function fill(q) {
    status("Loading threads…");
    try {
      const body = await api("/threads" + (q ? "?q=" + encodeURIComponent(q) : ""));
      list.replaceChildren(...body.threads.map(threadItem));
      if (!body.threads.length) list.append(el("li", { class: "muted", text: q ? "No thread matches." : "No threads yet." }));
      status(body.threads.length + " thread(s)");
    } catch (error) { status(""); failed(error); }
  }
  await fill(query);
}

function threadItem(t) {
  return el("li", { "data-thread": t.id },
    el("a", { href: "/ui/threads/" + encodeURIComponent(t.id) }, t.title || "(no text)"),
    t.kind === "group" ? el("span", { class: "badge", text: "group chat" }) : null,
    t.parent_id ? el("span", { class: "badge fork", text: "fork" }) : null,
    el("div", { class: "muted" }, t.messages + " messages · ", el("time", { text: when(t.updated_at) }),
       " · ", el("code", { text: t.id })));
}

// ---- one thread: /ui/threads/{id} ----
function contentNodes(message) {
  const out = [];
  const contents = message.contents || [{ type: "text", text: message.text }];
  for (const c of contents) {
    if (c.type === "text") out.push(el("div", { class: "text", text: c.text }));
    else if (c.type === "function_call")
      out.push(el("details", { class: "call" }, el("summary", {}, "Tool call: " + c.name),
                  el("pre", { text: c.arguments })));
    else if (c.type === "function_result")
      out.push(el("details", { class: "result" },
                  el("summary", {}, c.exception ? "Tool failed: " + c.exception : "Tool result"),
                  el("pre", { text: JSON.stringify(c.result === undefined ? null : c.result, null, 2) })));
    else if (c.type === "usage") {
      const d = c.details || {};
      out.push(el("div", { class: "muted usage" }, "Tokens: " + (d.input_token_count ?? "?") + " in, "
                  + (d.output_token_count ?? "?") + " out"));
    } else if (c.type === "error")
      out.push(el("div", { class: "error-note" },
                  (c.error_code === "turn_abandoned" ? "Abandoned input: " : "Failed input: ") + c.message));
    else if (c.type === "uri") out.push(el("div", { class: "muted", text: "Attachment: " + c.uri }));
    else out.push(el("div", { class: "muted", text: "[" + c.type + "]" }));
  }
  return out;
}

function messageNode(message, index, onFork) {
  const contents = message.contents || [];
  const bad = contents.some((c) => c.type === "error");
  const tool = message.role === "tool";
  return el("li", { class: "msg " + message.role + (tool ? " tool" : "") + (bad ? " failed" : ""),
                    "data-index": index, "aria-label": "Message " + (index + 1) },
    el("div", {}, el("span", { class: "who", text: message.author_name || message.role }),
       message.author_name ? el("span", { class: "muted", text: message.role }) : null,
       bad ? el("span", { class: "badge failed", text: "failed" }) : null),
    contentNodes(message),
    onFork ? el("div", { class: "actions" },
      el("button", { type: "button", "aria-label": "Fork after message " + (index + 1),
                     onclick: () => onFork(index + 1) }, "Fork here")) : null);
}

async function threadPage(id) {
  let view;
  status("Loading thread…");
  try { view = await api("/threads/" + encodeURIComponent(id) + "?limit=" + PAGE); }
  catch (error) { status(""); return failed(error); }
  const config = await api("/config");
  document.title = (view.title || id) + " - threadline";
  const transcript = el("ol", { class: "transcript", "aria-label": "Transcript" });
  let loaded = 0;
  const more = el("button", { type: "button", id: "more" }, "Load more messages");
  const counter = el("span", { class: "muted", id: "shown" });
  async function fork(at) {
    try {
      const made = await api("/threads/" + encodeURIComponent(id) + "/fork?at=" + at, { method: "POST" });
      location.assign("/ui/threads/" + encodeURIComponent(made.id));
    } catch (error) { failed(error); }
  }
  function append(page) {
    page.forEach((m, i) => transcript.append(messageNode(m, loaded + i, fork)));
    loaded += page.length;
    counter.textContent = "Showing " + loaded + " of " + view.messages + " messages";
    more.hidden = loaded >= view.messages;
  }
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await api("/threads/" + encodeURIComponent(id) + "?offset=" + loaded + "&limit=" + PAGE);
      append(next.page);
    } catch (error) { failed(error); }
    more.disabled = false;
  });
  const tree = el("section", { class: "tree", "aria-labelledby": "tree-h" },
    el("h2", { id: "tree-h", text: "Fork tree" }),
    view.parent_id ? el("p", {}, "Forked from ",
      el("a", { href: "/ui/threads/" + encodeURIComponent(view.parent_id) }, view.parent_id)) : null,
    view.children.length
      ? el("ul", { "aria-label": "Branches" }, view.children.map((c) => el("li", {},
          el("a", { href: "/ui/threads/" + encodeURIComponent(c.id), class: "branch" }, c.id),
          " (" + c.messages + " messages)")))
      : el("p", { class: "muted", text: "No branches. Use “Fork here” on a message to start one." }));
  const traces = el("section", { "aria-labelledby": "traces-h" }, el("h2", { id: "traces-h", text: "Traces" }),
    el("button", { type: "button", onclick: () => showTraces(id, traces) }, "Show traces"));
  show(el("h1", { text: view.title || "(no text)" }),
       el("p", { class: "muted" }, el("code", { text: id }), " · " + view.messages + " messages",
          view.usage ? el("span", { id: "usage", text: " · tokens: " + view.usage.input_tokens + " in, "
                                    + view.usage.output_tokens + " out" }) : null,
          view.kind === "group" ? el("span", { class: "badge", text: "group chat" }) : null),
       view.notes.length ? el("ul", { class: "notes", "aria-label": "Group chat" },
                              view.notes.map((n) => el("li", { text: n }))) : null,
       tree, el("h2", { text: "Transcript" }), el("div", { class: "pager" }, counter), transcript,
       el("div", { class: "pager" }, more),
       config.chat && view.kind !== "group" ? chatBox(id, transcript, config.chat) : null, traces);
  append(view.page);
  status("");
}

function chatBox(id, transcript, via) {
  const live = el("div", { class: "live", id: "live-reply", "aria-live": "polite", hidden: true });
  const box = el("textarea", { id: "chat-input", name: "message", required: true });
  const send = el("button", { type: "submit", class: "primary" }, "Send");
  const form = el("form", { id: "chat", onsubmit: async (e) => {
      e.preventDefault();
      const text = box.value;
      if (!text.trim()) return;
      send.disabled = true;
      transcript.append(messageNode({ role: "user", text }, transcript.children.length, null));
      live.hidden = false;
      live.textContent = "";
      try {
        const stream = via === "responses" ? streamReply : streamFromUi;
        await stream(id, text, (delta) => { live.textContent += delta; });
        box.value = "";
        status("Reply received.");
      } catch (error) { status(""); live.textContent = "Error: " + error.message; }
      send.disabled = false;
    } },
    el("label", { for: "chat-input" }, "Message"), box, send);
  return el("section", { "aria-labelledby": "chat-h" }, el("h2", { id: "chat-h", text: "Chat" }), form, live);
}

async function streamReply(conversation, text, onDelta) {
  // The same POST /v1/responses an SDK client makes, streamed as server-sent events.
  const response = await fetch("/v1/responses", {
    method: "POST",
    headers: headers({ "content-type": "application/json", accept: "text/event-stream" }),
    body: JSON.stringify({ conversation, input: text, stream: true }),
  });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error.message; } catch (e) { /* keep statusText */ }
    throw new HttpError(response.status, message);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        let data;
        try { data = JSON.parse(line.slice(5)); } catch (e) { continue; }
        if (data.type === "response.output_text.delta") onDelta(data.delta);
        else if (data.type === "response.failed" || data.type === "error")
          throw new Error((data.response && data.response.error && data.response.error.message) || data.message || "the turn failed");
      }
    }
  }
}

async function streamFromUi(id, text, onDelta) {
  // threadline ui: the page's own endpoint runs the turn and sends JSON lines.
  const response = await fetch("/ui/api/threads/" + encodeURIComponent(id) + "/messages", {
    method: "POST",
    headers: headers({ "content-type": "application/json" }),
    body: JSON.stringify({ text }),
  });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error.message; } catch (e) { /* keep statusText */ }
    throw new HttpError(response.status, message);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 1);
      if (!line.trim()) continue;
      const data = JSON.parse(line);
      if (data.error) throw new Error(data.error);
      if (data.delta) onDelta(data.delta);
    }
  }
}

async function showTraces(id, section) {
  let body;
  try { body = await api("/threads/" + encodeURIComponent(id) + "/traces"); }
  catch (error) { return failed(error); }
  const out = [el("h2", { id: "traces-h", text: "Traces" })];
  if (!body.recorded) out.push(el("p", { class: "muted", text: "This process keeps no traces. threadline serve keeps the last traces of the turns it runs (with the otel extra installed)." }));
  else if (!body.traces.length) out.push(el("p", { class: "muted", text: "No trace of this thread is kept (only the last ones of this process are)." }));
  body.traces.forEach((t) => out.push(waterfall(t)));
  section.replaceChildren(...out);
}

function waterfall(t) {
  const total = t.duration_ms || 1;
  const depth = {};
  const rows = t.spans.map((s) => {
    depth[s.span_id] = s.parent_id && depth[s.parent_id] !== undefined ? depth[s.parent_id] + 1 : 0;
    const attrs = Object.entries(s.attributes);
    return el("div", { class: "span-row" + (s.error ? " error" : ""), role: "listitem" },
      el("div", { class: "name", style: "padding-left:" + depth[s.span_id] * 12 + "px" },
         s.name, el("span", { class: "muted", text: " " + s.duration_ms.toFixed(2) + " ms" })),
      el("div", { class: "track", "aria-hidden": "true" },
         el("div", { class: "bar", style: "left:" + (100 * s.start_ms / total).toFixed(2) + "%;width:"
                     + Math.max(0.3, 100 * s.duration_ms / total).toFixed(2) + "%" })),
      attrs.length ? el("details", {}, el("summary", {}, "Attributes of " + s.name),
        el("pre", { text: attrs.map(([k, v]) => k + " = " + JSON.stringify(v)).join("\n") })) : null);
  });
  return el("div", { class: "waterfall", role: "list", "aria-label": "Trace " + t.trace_id },
    el("div", { class: "muted", text: "Trace " + t.trace_id + " · " + total.toFixed(2) + " ms" }), rows);
}

// ---- memories: /ui/memories ----
async function memoriesPage() {
  document.title = "Memories - threadline";
  const params = new URLSearchParams(location.search);
  const results = el("ul", { class: "memories", "aria-label": "Memories" });
  const form = el("form", { id: "memory-form", onsubmit: (e) => { e.preventDefault(); load(); } },
    el("label", { for: "memory-user" }, "User"),
    el("input", { id: "memory-user", name: "user", required: true, value: params.get("user") || "" }),
    el("label", { for: "memory-query" }, "Search"),
    el("input", { id: "memory-query", name: "q", type: "search", value: params.get("q") || "" }),
    el("button", { type: "submit" }, "Show memories"),
    el("button", { type: "button", class: "danger", id: "forget-user", onclick: forgetUser }, "Forget this user"));
  show(el("h1", { text: "Memories" }), form, results);
  const user = () => document.getElementById("memory-user").value.trim();
  async function load() {
    const q = document.getElementById("memory-query").value.trim();
    if (!user()) return status("Name a user.");
    history.replaceState(null, "", "/ui/memories?user=" + encodeURIComponent(user()) + (q ? "&q=" + encodeURIComponent(q) : ""));
    status("Loading memories…");
    try {
      const body = await api("/memories?user=" + encodeURIComponent(user()) + (q ? "&q=" + encodeURIComponent(q) : ""));
      results.replaceChildren(...body.memories.map(memoryItem));
      if (!body.memories.length) results.append(el("li", { class: "muted", text: "No memories." }));
      status(body.memories.length + " memories");
    } catch (error) { status(""); failed(error); }
  }
  function memoryItem(m) {
    return el("li", { "data-memory": m.id },
      el("div", {}, el("span", { class: "badge", text: m.kind }),
         m.score !== null ? el("span", { class: "muted score", text: " score " + m.score.toFixed(3) }) : null,
         m.thread_id ? el("span", { class: "muted" }, " · from ",
           el("a", { href: "/ui/threads/" + encodeURIComponent(m.thread_id) }, m.thread_id)) : null),
      el("div", { class: "memory-text", text: m.text }),
      el("button", { type: "button", class: "danger", "aria-label": "Forget memory " + m.id, onclick: async () => {
          if (!confirm("Forget this memory? It cannot be undone.")) return;
          try {
            await api("/memories/" + encodeURIComponent(m.id) + "?user=" + encodeURIComponent(user()), { method: "DELETE" });
            status("Memory forgotten.");
            await load();
          } catch (error) { failed(error); }
        } }, "Forget"));
  }
  async function forgetUser() {
    if (!user()) return status("Name a user.");
    if (!confirm("Forget everything about " + user() + "? It cannot be undone.")) return;
    try {
      const body = await api("/memories?user=" + encodeURIComponent(user()), { method: "DELETE" });
      status("Forgot " + body.records + " memories of " + body.user + ".");
      results.replaceChildren();
    } catch (error) { failed(error); }
  }
  if (user()) await load();
}

// ---- start ----
function route() {
  const path = location.pathname;
  const thread = path.match(/^\/ui\/threads\/([^/]+)\/?$/);
  if (path === "/ui/" || path === "/ui") return threadsPage();
  if (thread) return threadPage(decodeURIComponent(thread[1]));
  if (path === "/ui/memories") return memoriesPage();
  return notFound("No page at " + path + ".");
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  if (sessionStorage.getItem(KEY)) input.placeholder = "key set for this tab";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim()) sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    route();
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    input.placeholder = "sk-...";
    route();
  });
  route();
});
