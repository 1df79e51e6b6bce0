// The chat page: one session of rwkv-server, replies streamed from
// POST /v1/chat/completions (stream: true, X-Session-Id: the session), and
// the session buttons calling /v1/sessions. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, controller: null };

function setStatus(text) { $("status").textContent = text; }

// With rwkv-server --api-keys every /v1 call needs "Authorization: Bearer
// KEY": the key is asked for once (on the first 401) and kept in
// localStorage.
function authHeaders(headers) {
  const key = localStorage.getItem("rwkv-api-key");
  if (key) headers["Authorization"] = `Bearer ${key}`;
  return headers;
}

// fetch() that asks for an API key and retries once when the server says 401.
async function authorizedFetch(path, init) {
  init.headers = authHeaders(init.headers || {});
  let res = await fetch(path, init);
  if (res.status === 401) {
    const key = window.prompt("This server needs an API key:");
    if (key) {
      localStorage.setItem("rwkv-api-key", key.trim());
      init.headers = authHeaders(init.headers);
      res = await fetch(path, init);
    }
  }
  return res;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await authorizedFetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const message = (data.error && data.error.message) || res.statusText;
    throw new Error(`${res.status}: ${message}`);
  }
  return data;
}

function showSession(info) {
  state.session = info.id;
  localStorage.setItem("rwkv-session", info.id);
  $("session-id").textContent = info.id;
  $("session-tokens").textContent = info.token_count;
  const link = $("download-state");
  link.href = `/v1/sessions/${encodeURIComponent(info.id)}/state`;
  link.setAttribute("download", `${info.id}.pth`);
  // A plain link sends no Authorization header: with a key, fetch the file.
  link.onclick = async (event) => {
    if (!localStorage.getItem("rwkv-api-key")) return;
    event.preventDefault();
    const res = await authorizedFetch(link.href, { method: "GET" });
    if (!res.ok) return setStatus(`Download failed: ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = `${info.id}.pth`;
    a.click();
    URL.revokeObjectURL(url);
  };
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : role === "assistant" ? "Assistant" : "Error";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  div.append(who, body);
  $("log").append(div);
  $("log").scrollTop = $("log").scrollHeight;
  return body;
}

function addNote(text) {
  const p = document.createElement("p");
  p.className = "note";
  p.textContent = text;
  $("log").append(p);
}

async function refreshSession() {
  showSession(await api("GET", `/v1/sessions/${encodeURIComponent(state.session)}`));
}

async function newSession() {
  showSession(await api("POST", "/v1/sessions", {}));
  $("log").replaceChildren();
  addNote(`New session ${state.session}.`);
}

// Reads the SSE stream of a chat completion into `target`; returns the text.
async function readStream(res, target) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return text;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          text += delta.content;
          target.textContent = text.trimStart();
        }
      }
    }
  }
}

async function send(message) {
  addMessage("user", message);
  const target = addMessage("assistant", "");
  target.setAttribute("aria-busy", "true");
  state.controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  setStatus("Generating…");
  try {
    const res = await authorizedFetch("/v1/chat/completions", {
      method: "POST",
      signal: state.controller.signal,
      headers: { "Content-Type": "application/json", "X-Session-Id": state.session },
      body: JSON.stringify({
        model: $("model").textContent,
        messages: [{ role: "user", content: message }],
        stream: true,
        temperature: Number($("temperature").value),
        max_tokens: Number($("max-tokens").value),
      }),
    });
    if (!res.ok) {
      const data = await res.json().catch(() => ({}));
      throw new Error((data.error && data.error.message) || res.statusText);
    }
    await readStream(res, target);
    target.closest(".msg").dataset.done = "true";
    setStatus("Done.");
  } catch (err) {
    if (err.name === "AbortError") {
      addNote("Stopped; the turn was rolled back (the session is as before it).");
      setStatus("Stopped.");
    } else {
      target.closest(".msg").classList.add("error");
      target.textContent = String(err.message || err);
      setStatus("Failed.");
    }
  } finally {
    target.removeAttribute("aria-busy");
    state.controller = null;
    $("send").disabled = false;
    $("stop").disabled = true;
    await refreshSession().catch(() => {});
  }
}

function wire() {
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const message = $("message").value.trim();
    if (!message || state.controller) return;
    $("message").value = "";
    send(message);
  });
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("new-session").addEventListener("click", () => newSession().catch((e) => setStatus(e.message)));
  $("reset-session").addEventListener("click", async () => {
    try {
      showSession(await api("POST", `/v1/sessions/${encodeURIComponent(state.session)}/reset`));
      $("log").replaceChildren();
      addNote(`Session ${state.session} reset to its initial state.`);
    } catch (e) { setStatus(e.message); }
  });
  $("fork-session").addEventListener("click", async () => {
    try {
      const from = state.session;
      showSession(await api("POST", `/v1/sessions/${encodeURIComponent(from)}/fork`, {}));
      addNote(`Forked ${from} into ${state.session}; the conversation goes on in the copy.`);
    } catch (e) { setStatus(e.message); }
  });
}

async function start() {
  wire();
  try {
    const models = await api("GET", "/v1/models");
    $("model").textContent = models.data.length ? models.data[0].id : "?";
    const saved = localStorage.getItem("rwkv-session");
    if (saved) {
      state.session = saved;
      try { await refreshSession(); addNote(`Continuing session ${saved}.`); return; }
      catch (e) { /* expired or unknown: a new one below */ }
    }
    await newSession();
  } catch (e) {
    setStatus(`Cannot reach the server: ${e.message}`);
  }
}

start();
