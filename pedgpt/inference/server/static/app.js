// The chat page: streams answers from /v1/chat/completions (fetch + server-sent events). The first chunk of
// every stream carries `pedgpt_safety`; when urgent, the emergency guidance is shown before any model text.
"use strict";

const $ = (id) => document.getElementById(id);
let history = [];          // [{role, content}] of this conversation
let controller = null;     // aborts the request in flight (the server then stops generating)
let apiKey = sessionStorage.getItem("pedgpt-api-key") || "";

function addMessage(kind, text) {
  const div = document.createElement("div");
  div.className = "msg " + kind;
  div.textContent = text;
  $("messages").appendChild(div);
  div.scrollIntoView({block: "end"});
  return div;
}

function showEmergency(message) {
  $("emergency-text").textContent = message;
  $("emergency").hidden = false;
  addMessage("urgent", message);
}

function newConversation() {
  if (controller) controller.abort();
  history = [];
  $("messages").replaceChildren();
  $("emergency").hidden = true;
  $("input").focus();
}

async function post(body, signal) {
  for (;;) {
    const headers = {"Content-Type": "application/json"};
    if (apiKey) headers["Authorization"] = "Bearer " + apiKey;
    const resp = await fetch("/v1/chat/completions", {method: "POST", headers, body: JSON.stringify(body), signal});
    if (resp.status !== 401) return resp;
    apiKey = window.prompt("此服务器需要 API 密钥：") || "";
    if (!apiKey) return resp;
    sessionStorage.setItem("pedgpt-api-key", apiKey);
  }
}

// Yields the parsed JSON of each `data:` event until `data: [DONE]`.
async function* events(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

async function send(text) {
  history.push({role: "user", content: text});
  addMessage("user", text);
  const body = {model: "pedgpt", messages: history, stream: true};
  if ($("task").value) body.task = $("task").value;
  controller = new AbortController();
  const mine = controller;
  $("send").disabled = true;
  let bubble = null;
  let answer = "";
  try {
    const resp = await post(body, mine.signal);
    if (!resp.ok) {
      const err = await resp.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || resp.statusText);
    }
    for await (const chunk of events(resp)) {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.pedgpt_safety && chunk.pedgpt_safety.urgent) showEmergency(chunk.pedgpt_safety.message);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (!bubble) bubble = addMessage("assistant streaming", "");
      if (delta && delta.content) {
        answer += delta.content;
        bubble.textContent = answer;
        bubble.scrollIntoView({block: "end"});
      }
    }
    history.push({role: "assistant", content: answer});
  } catch (e) {
    if (e.name !== "AbortError") {
      history.pop();
      addMessage("error", "出错了：" + e.message);
    }
  } finally {
    if (bubble) bubble.classList.remove("streaming");
    if (controller === mine) controller = null;
    $("send").disabled = false;
  }
}

async function init() {
  const info = await (await fetch("/info")).json();
  $("disclaimer").textContent = info.disclaimer;
  const select = $("task");
  const none = new Option("（不指定）", "");
  select.add(none);
  for (const t of info.tasks) select.add(new Option(t.id + " · " + t.title, t.id));
  select.value = info.default_task || "";
  $("new-chat").addEventListener("click", newConversation);
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("input").value.trim();
    if (!text || controller) return;
    $("input").value = "";
    send(text);
  });
  $("input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  document.body.dataset.ready = "1";
}

init();
