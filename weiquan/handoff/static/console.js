// 人工客服台: the operator console. Talks only to its own server's JSON API (docs/handoff.md) with the operator
// token as a Bearer header; every string reaches the page through textContent, never innerHTML.
"use strict";

const TOKEN_KEY = "weiquan-console-token";
const STATUS = { waiting: "等待中", active: "服务中", closed: "已结束" };
const CHANNEL = { socketio: "网页", wechat: "微信", rest: "接口" };
const SPEAKER = { user: "用户", bot: "机器人", operator: "人工客服", status: "系统" };
const ENDING = {
  released: "已交还机器人", timeout: "等待超时，机器人已接回", restarted: "用户重新开始了对话",
  cancelled: "用户说不需要人工了，机器人已接回",
};
// What POST …/messages answers (weiquan/core/contracts.py Delivery): "delivered" only when the buyer's side confirmed it.
const DELIVERY = {
  delivered: "已送达：用户那边已确认收到。",
  stored: "已保存，但用户现在没有收到：等用户回来（重新打开网页或再发消息）时会看到。",
};
const FALLBACK_POLL_MS = 15000;

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem(TOKEN_KEY), tab: "waiting", items: [], selected: null, detail: null };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function clock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" });
}

function ago(iso) {
  if (!iso) return "";
  const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
  if (minutes < 1) return "刚刚";
  if (minutes < 60) return `${minutes} 分钟前`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} 小时前` : `${Math.floor(hours / 24)} 天前`;
}

class Unauthorized extends Error {}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) throw new Unauthorized();
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || `请求失败（${response.status}）`);
  return data;
}

function conversationPath(senderId, suffix = "") {
  return `/api/conversations/${encodeURIComponent(senderId)}${suffix}`;
}

// --- login ----------------------------------------------------------------------------------------------------

function showLogin(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("live").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  refresh();
  listen();
}

// --- live updates: server-sent events read with fetch (EventSource cannot send the token header) -----------------

let stream = null;

function setLive(ok) {
  const live = $("live");
  live.hidden = false;
  live.textContent = ok ? "实时更新中" : "连接中断，正在重连…";
  live.classList.toggle("down", !ok);
}

async function listen() {
  if (stream) stream.abort();
  const controller = new AbortController();
  stream = controller;
  try {
    const response = await fetch("/api/events", {
      headers: { Authorization: `Bearer ${state.token}` }, signal: controller.signal, cache: "no-store",
    });
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok || !response.body) throw new Error("no stream");
    setLive(true);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.split("\n").includes("event: changed")) refresh();
      }
    }
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin("令牌不对，请重新输入。");
    if (controller.signal.aborted) return undefined;
  }
  if (stream === controller && state.token) {
    setLive(false);
    setTimeout(() => { if (stream === controller && state.token) listen(); }, 2000);
  }
  return undefined;
}

// --- the queue ------------------------------------------------------------------------------------------------

let refreshing = null;

function refresh() {
  if (!state.token) return Promise.resolve();
  if (refreshing) {
    refreshing.again = true;
    return refreshing.promise;
  }
  const job = { again: false };
  job.promise = (async () => {
    try {
      do {
        job.again = false;
        state.items = await api("GET", "/api/conversations?status=all");
        renderList();
        if (state.selected) await loadDetail(state.selected);
      } while (job.again);
    } catch (error) {
      if (error instanceof Unauthorized) showLogin("令牌不对，请重新输入。");
    } finally {
      refreshing = null;
    }
  })();
  refreshing = job;
  return job.promise;
}

function renderList() {
  const counts = { waiting: 0, active: 0, all: state.items.length };
  for (const item of state.items) if (item.status in counts) counts[item.status] += 1;
  for (const node of document.querySelectorAll("[data-count]")) node.textContent = counts[node.dataset.count];
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.status === state.tab));
  }
  const shown = state.items.filter((item) => state.tab === "all" || item.status === state.tab);
  const list = $("list");
  list.replaceChildren(...shown.map(listItem));
  $("empty").hidden = shown.length > 0;
  $("empty").textContent = state.tab === "waiting" ? "没有等待中的会话" : "暂时没有会话";
}

function listItem(item) {
  const li = el("li");
  const button = el("button", `entry entry--${item.status}`);
  button.type = "button";
  button.dataset.sender = item.sender_id;
  if (item.sender_id === state.selected) button.setAttribute("aria-current", "true");
  const head = el("div", "entry-head");
  head.append(el("span", `badge badge--${item.status}`, STATUS[item.status] || item.status));
  head.append(el("span", "channel", CHANNEL[item.channel] || item.channel));
  if (item.summary && item.summary.safety) head.append(el("span", "badge badge--danger", "人身威胁"));
  if (item.status === "waiting" && item.offline) head.append(el("span", "badge badge--left", "留言"));
  if (item.status === "waiting" && item.requeued_at) head.append(el("span", "badge badge--left", "客服离开，重新排队"));
  head.append(el("span", "since", ago(item.since)));
  button.append(head);
  const lines = el("ul", "entry-summary");
  for (const line of (item.summary && item.summary.lines) || []) lines.append(el("li", "", line));
  button.append(lines);
  if (item.last_user_message) button.append(el("p", "last", `用户：${item.last_user_message}`));
  button.addEventListener("click", () => select(item.sender_id));
  li.append(button);
  return li;
}

// --- one conversation -------------------------------------------------------------------------------------------

async function select(senderId) {
  state.selected = senderId;
  $("notice").textContent = "";
  renderList();
  try {
    await loadDetail(senderId);
  } catch (error) {
    if (error instanceof Unauthorized) showLogin("令牌不对，请重新输入。");
  }
}

async function loadDetail(senderId) {
  let detail;
  try {
    detail = await api("GET", conversationPath(senderId));
  } catch (error) {
    if (error instanceof Unauthorized) throw error;
    state.selected = null;
    $("conv").hidden = true;
    $("placeholder").hidden = false;
    return;
  }
  if (state.selected !== senderId) return;
  state.detail = detail;
  renderDetail(detail);
}

function renderDetail(detail) {
  $("placeholder").hidden = true;
  $("conv").hidden = false;
  $("conv-title").textContent = `会话 ${detail.sender_id.slice(0, 12)}`;
  const meta = [CHANNEL[detail.channel] || detail.channel, STATUS[detail.status] || detail.status];
  if (detail.status === "waiting") meta.push(`${clock(detail.requested_at)} 请求人工，${clock(detail.deadline_at)} 前无人接入则交还机器人`);
  if (detail.status === "active" && detail.since) meta.push(`${clock(detail.since)} 接入`);
  if (detail.status === "closed" && detail.ending) meta.push(ENDING[detail.ending] || detail.ending);
  if (detail.rasa_reachable === false) meta.push("暂时读不到对话记录");
  $("conv-meta").textContent = meta.join(" · ");

  $("takeover").disabled = detail.status !== "waiting";
  $("release").disabled = detail.status === "closed";
  const active = detail.status === "active";
  $("reply-text").disabled = !active;
  $("send").disabled = !active;
  $("reply-text").placeholder = active ? "输入回复，Enter 发送，Shift+Enter 换行" : "接入后才能回复";

  $("summary").replaceChildren(...((detail.summary && detail.summary.lines) || []).map((line) => el("li", "", line)));
  const left = detail.left || [];
  $("left-box").hidden = left.length === 0;
  $("left").replaceChildren(...left.map((m) => {
    const li = el("li");
    li.append(el("time", "", clock(m.at)), el("span", "", m.text));
    return li;
  }));

  const log = $("transcript");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.replaceChildren(...(detail.transcript || []).map((line) => {
    const item = el("div", `line line--${line.from}`);
    const who = el("span", "who", `${SPEAKER[line.from] || line.from} ${clock(line.at)}`);
    item.append(who, el("p", "text", line.text));
    return item;
  }));
  if (atBottom) log.scrollTop = log.scrollHeight;
}

async function act(method, suffix, body, done) {
  const senderId = state.selected;
  if (!senderId) return;
  try {
    const result = await api(method, conversationPath(senderId, suffix), body);
    $("notice").textContent = done(result);
    $("notice").classList.remove("error");
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin("令牌不对，请重新输入。");
    $("notice").textContent = error.message;
    $("notice").classList.add("error");
  }
  return refresh();
}

function sendReply() {
  const box = $("reply-text");
  const text = box.value.trim();
  if (!text || box.disabled) return;
  act("POST", "/messages", { text }, (result) => {
    box.value = "";
    return DELIVERY[result.delivery] || "已发送。";
  });
}

// --- wiring ------------------------------------------------------------------------------------------------

function init() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (fragment.get("token")) {
    state.token = fragment.get("token");
    sessionStorage.setItem(TOKEN_KEY, state.token);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    $("token").value = "";
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
  });
  $("logout").addEventListener("click", () => {
    if (stream) stream.abort();
    showLogin("");
  });
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => {
      state.tab = tab.dataset.status;
      renderList();
    });
  }
  $("takeover").addEventListener("click", () => act("POST", "/takeover", {}, () => "已接入，用户会看到「客服已接入」。"));
  $("release").addEventListener("click", () => act("POST", "/release", {}, () => "已交还机器人。"));
  $("reply").addEventListener("submit", (event) => {
    event.preventDefault();
    sendReply();
  });
  $("reply-text").addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    sendReply();
  });
  setInterval(() => { if (state.token) refresh(); }, FALLBACK_POLL_MS);
  if (state.token) start();
  else showLogin("");
}

init();
