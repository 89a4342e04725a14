// 恶意骚扰维权助手 — the web chat widget. One <script> tag embeds it (see docs/widget.md); it talks to Rasa's
// socket.io channel (weiquan.edge.channels.socketio.WidgetSocketIOInput) with socket.io-client 4, bundled here.
//
// Socket protocol: after every (re)connect emit `session_request {session_id}`; the server answers
// `session_confirm <id>`; user text goes out as `user_uttered {message, session_id, customData}`; each bot message
// arrives as one `bot_uttered {text, quick_replies?, custom?, id?}`. An operator's message carries an `id` and asks
// for a socket.io acknowledgement: the widget acknowledges once the message is on screen (that is how the console
// knows it was delivered), and shows a message with a given id only once (a message delivered again after a lost
// acknowledgement).

import { io } from "socket.io-client";
import { feedbackRow, sendFeedback, wantsFeedback } from "./feedback.js";
import { handoffMessage, withPersonAfter } from "./handoff.js";
import { el, icon, renderMessage } from "./render.js";
import { Store } from "./storage.js";

const DEFAULTS = {
  serverUrl: "http://localhost:5005",
  socketPath: "/socket.io",
  title: "恶意骚扰维权助手",
  subtitle: "淘宝/天猫买家被卖家骚扰？我帮你一步步投诉",
  primaryColor: "#d03c00", // Taobao-like orange, dark enough for white text (4.8:1, WCAG AA)
  primaryTextColor: "#ffffff",
  startMessage: "/greet",
  placeholder: "说说卖家做了什么，回车发送",
  open: false,
  maxLength: 500,
  storageKey: "weiquan-widget",
  transports: ["websocket"],
  cssUrl: null,
  feedbackUrl: null, // the operator console's POST /feedback; none: no 👍/👎 (docs/analytics.md)
};

// data-* attributes of the embedding <script> tag, e.g. data-server-url, data-primary-color, data-open.
const ATTRIBUTE_OPTIONS = {
  serverUrl: "server-url",
  socketPath: "socket-path",
  title: "title",
  subtitle: "subtitle",
  primaryColor: "primary-color",
  primaryTextColor: "primary-text-color",
  startMessage: "start-message",
  placeholder: "placeholder",
  open: "open",
  storageKey: "storage-key",
  cssUrl: "css-url",
  feedbackUrl: "feedback-url",
};

const TYPING_TIMEOUT_MS = 20000;
const TEXT = {
  launcherOpen: "打开维权助手聊天窗口",
  launcherClose: "关闭维权助手聊天窗口",
  reconnecting: "连接中断，正在重新连接…",
  unreachable: "暂时连不上服务器，正在重试…",
  newChat: "新对话",
  newChatLabel: "清除本机聊天记录，开始新对话",
  close: "关闭聊天窗口",
  send: "发送",
  inputLabel: "输入你的问题",
  typing: "助手正在输入",
  log: "对话记录",
  footer: "仅供参考，以平台规则为准。遇到人身威胁请立即报警。",
};

function optionsFromScript(script) {
  const options = {};
  if (!script) return options;
  for (const [key, attribute] of Object.entries(ATTRIBUTE_OPTIONS)) {
    const value = script.getAttribute(`data-${attribute}`);
    if (value !== null) options[key] = value;
  }
  if (typeof options.open === "string") options.open = options.open !== "false";
  if (!options.cssUrl && script.src) options.cssUrl = script.src.replace(/\.js(\?.*)?$/, ".css$1");
  return options;
}

function isColor(value) {
  return typeof value === "string" && window.CSS && CSS.supports("color", value);
}

class Widget {
  constructor(options) {
    this.options = { ...DEFAULTS, ...options };
    this.options.serverUrl = String(this.options.serverUrl).replace(/\/+$/, "");
    this.store = new Store(`${this.options.storageKey}:${this.options.serverUrl}`);
    this.history = this.store.loadHistory();
    this.pending = [];
    this.confirmed = false;
    this.typingTimer = null;
    this.withPerson = false; // a person has the conversation (src/handoff.js)
    this.composing = false;
    this._build();
    this._restore();
    this._connect();
    if (this.options.open) this.open(false);
  }

  // --- DOM ----------------------------------------------------------------------------------------------------

  _build() {
    const o = this.options;
    this.host = el("div", { id: "weiquan-widget", class: "weiquan-widget-host" });
    const shadow = this.host.attachShadow({ mode: "open" });
    if (o.cssUrl) shadow.append(el("link", { rel: "stylesheet", href: o.cssUrl }));

    this.root = el("div", { class: "wq-root", lang: "zh-CN" });
    if (isColor(o.primaryColor)) this.root.style.setProperty("--wq-primary", o.primaryColor);
    if (isColor(o.primaryTextColor)) this.root.style.setProperty("--wq-on-primary", o.primaryTextColor);

    this.launcher = el("button", {
      type: "button", class: "wq-launcher", "aria-expanded": "false", "aria-controls": "wq-panel",
      "aria-label": TEXT.launcherOpen,
    }, icon("chat"), el("span", { class: "wq-launcher-text" }, "维权助手"));
    this.launcher.addEventListener("click", () => (this.isOpen ? this.close() : this.open(true)));

    const titleId = "wq-title";
    const clear = el("button", { type: "button", class: "wq-head-btn wq-clear", "aria-label": TEXT.newChatLabel,
      title: TEXT.newChatLabel }, TEXT.newChat);
    clear.addEventListener("click", () => this.reset());
    const closeButton = el("button", { type: "button", class: "wq-head-btn wq-close", "aria-label": TEXT.close,
      title: TEXT.close }, "×");
    closeButton.addEventListener("click", () => this.close());

    this.status = el("div", { class: "wq-status", role: "status", hidden: true });
    this.log = el("div", { class: "wq-log", role: "log", "aria-live": "polite", "aria-label": TEXT.log,
      tabindex: "0" });
    this.typing = el("div", { class: "wq-typing", role: "status", hidden: true },
      el("span", { class: "wq-sr" }, TEXT.typing),
      el("span", { class: "wq-dot", "aria-hidden": "true" }), el("span", { class: "wq-dot", "aria-hidden": "true" }),
      el("span", { class: "wq-dot", "aria-hidden": "true" }));

    this.input = el("textarea", {
      id: "wq-input", class: "wq-input", rows: "1", maxlength: String(o.maxLength), placeholder: o.placeholder,
      enterkeyhint: "send", autocomplete: "off", "aria-label": TEXT.inputLabel,
    });
    this.counter = el("span", { class: "wq-counter", "aria-live": "polite", hidden: true });
    this.sendButton = el("button", { type: "submit", class: "wq-send" }, TEXT.send);
    const form = el("form", { class: "wq-composer", autocomplete: "off" }, this.input, this.counter,
      this.sendButton);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._submitInput();
    });
    this.input.addEventListener("compositionstart", () => { this.composing = true; });
    this.input.addEventListener("compositionend", () => { this.composing = false; });
    this.input.addEventListener("keydown", (event) => this._onKeydown(event));
    this.input.addEventListener("input", () => this._onInput());

    this.panel = el("section", { id: "wq-panel", class: "wq-panel", role: "dialog", "aria-modal": "false",
      "aria-labelledby": titleId, hidden: true },
    el("header", { class: "wq-header" },
      el("div", { class: "wq-heading" }, el("h2", { id: titleId, class: "wq-title" }, o.title),
        o.subtitle ? el("p", { class: "wq-subtitle" }, o.subtitle) : null),
      clear, closeButton),
    this.status, this.log, this.typing, form,
    el("p", { class: "wq-footer" }, TEXT.footer));
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        this.close();
      }
    });

    this.root.append(this.panel, this.launcher);
    shadow.append(this.root);
    document.body.append(this.host);
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  open(focus) {
    this.panel.hidden = false;
    this.root.classList.add("wq-open");
    this.launcher.setAttribute("aria-expanded", "true");
    this.launcher.setAttribute("aria-label", TEXT.launcherClose);
    this._scrollToEnd();
    if (focus) this.input.focus();
  }

  close() {
    this.panel.hidden = true;
    this.root.classList.remove("wq-open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.setAttribute("aria-label", TEXT.launcherOpen);
    this.launcher.focus();
  }

  _scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  // --- messages ---------------------------------------------------------------------------------------------

  _restore() {
    for (const message of this.history) this._render(message);
    this._retireQuickReplies({ keepLast: this.history.length > 0 && this.history[this.history.length - 1].from === "bot" });
  }

  _render(message) {
    const person = withPersonAfter(message);
    if (person !== undefined) this.withPerson = person;
    const node = handoffMessage(message) ||
      renderMessage(message, (title, payload, button) => this._onQuickReply(title, payload, button));
    if (node) {
      this.log.append(node);
      this._scrollToEnd();
    }
  }

  _add(message) {
    const stored = { ...message, ts: Date.now() };
    this.history.push(stored);
    this.store.saveHistory(this.history);
    this._render(stored);
    this._offerFeedback(stored);
  }

  // One 👍/👎 row per turn, under the first ruling or rule answer of the bot's reply; after a rating, an optional
  // comment goes out as a second POST with the same rating.
  _offerFeedback(message) {
    if (!this.options.feedbackUrl || this.feedbackOffered || !wantsFeedback(message)) return;
    this.feedbackOffered = true;
    const url = this.options.feedbackUrl;
    this.log.append(feedbackRow(
      (rating) => {
        sendFeedback(url, { sender_id: this.sessionId, rating });
        this._scrollToEnd();
      },
      (rating, comment) => sendFeedback(url, { sender_id: this.sessionId, rating, comment })));
    this._scrollToEnd();
  }

  // Quick replies belong to the turn they were offered in: once the user answers, older ones are disabled.
  _retireQuickReplies({ keepLast = false } = {}) {
    const groups = [...this.log.querySelectorAll(".wq-quick")];
    if (keepLast && groups.length && groups[groups.length - 1].closest(".wq-msg") === this.log.lastElementChild) groups.pop();
    for (const group of groups) {
      for (const button of group.querySelectorAll("button")) button.disabled = true;
    }
  }

  _onQuickReply(title, payload, button) {
    button.classList.add("wq-chosen");
    this.send(payload, title);
  }

  _onKeydown(event) {
    if (event.key !== "Enter" || event.shiftKey) return;
    // Enter that confirms a Chinese IME candidate must not send (keyCode 229 covers Safari's late compositionend).
    if (event.isComposing || this.composing || event.keyCode === 229) return;
    event.preventDefault();
    this._submitInput();
  }

  _onInput() {
    const input = this.input;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
    const left = this.options.maxLength - input.value.length;
    this.counter.hidden = left > 50;
    this.counter.textContent = `还可输入 ${left} 字`;
  }

  _submitInput() {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = "";
    this._onInput();
    this.send(text, text);
    this.input.focus();
  }

  // Sends `payload` to the bot and shows `shown` as the user's bubble (a button's title, not its payload).
  send(payload, shown) {
    this.feedbackOffered = false;
    this._retireQuickReplies();
    this._add({ from: "user", text: shown });
    this._emit(payload);
    if (!this.withPerson) this._showTyping(); // a person answers in their own time: no typing dots
  }

  _emit(message) {
    if (this.socket.connected && this.confirmed) {
      this.socket.emit("user_uttered", { message, session_id: this.sessionId, customData: { channel: "web" } });
    } else {
      this.pending.push(message);
    }
  }

  _onBotMessage(data, ack) {
    if (!data || typeof data !== "object") return;
    const seen = typeof data.id === "string" && this.history.some((m) => m.id === data.id);
    if (!seen) this._showBotMessage(data);
    if (typeof ack === "function") ack(true);
  }

  _showBotMessage(data) {
    const message = { from: "bot" };
    if (typeof data.id === "string") message.id = data.id;
    if (typeof data.text === "string") message.text = data.text;
    if (Array.isArray(data.quick_replies)) message.quick_replies = data.quick_replies;
    else if (Array.isArray(data.buttons)) message.quick_replies = data.buttons;
    if (data.custom && typeof data.custom === "object") message.custom = data.custom;
    if (data.attachment && data.attachment.type === "image" && data.attachment.payload) {
      message.text = [message.text, String(data.attachment.payload.src || "")].filter(Boolean).join("\n");
    }
    this._hideTyping();
    if (!message.text && !message.custom && !message.quick_replies) return;
    this._add(message);
  }

  _showTyping() {
    this.typing.hidden = false;
    this._scrollToEnd();
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this._hideTyping(), TYPING_TIMEOUT_MS);
  }

  _hideTyping() {
    clearTimeout(this.typingTimer);
    this.typing.hidden = true;
  }

  _setStatus(text) {
    this.status.textContent = text || "";
    this.status.hidden = !text;
    this.root.classList.toggle("wq-offline", Boolean(text));
  }

  // --- connection -------------------------------------------------------------------------------------------

  get sessionId() {
    return this.store.sessionId;
  }

  _connect() {
    const o = this.options;
    // websocket only: no CORS preflights and no sticky sessions needed behind a load balancer.
    this.socket = io(o.serverUrl, {
      path: o.socketPath, transports: o.transports, reconnectionDelay: 1000, reconnectionDelayMax: 5000,
    });
    this.socket.on("connect", () => {
      this.confirmed = false;
      this._setStatus("");
      this.socket.emit("session_request", { session_id: this.sessionId });
    });
    this.socket.on("session_confirm", (data) => {
      const id = typeof data === "string" ? data : data && data.session_id;
      if (!id) return;
      this.store.sessionId = id;
      this.confirmed = true;
      if (!this.history.length && !this.pending.length && o.startMessage) {
        this._emit(o.startMessage);
        this._showTyping();
      }
      const queued = this.pending.splice(0);
      for (const message of queued) this._emit(message);
    });
    this.socket.on("bot_uttered", (data, ack) => this._onBotMessage(data, ack));
    this.socket.on("disconnect", (reason) => {
      this.confirmed = false;
      this._setStatus(TEXT.reconnecting);
      if (reason === "io server disconnect") this.socket.connect();
    });
    this.socket.on("connect_error", () => {
      this.confirmed = false;
      this._setStatus(TEXT.unreachable);
      // a refused handshake (e.g. the server restarting) stops automatic retries; keep trying
      if (!this.socket.active) setTimeout(() => this.socket.connect(), 3000);
    });
  }

  // "新对话": forget this browser's copy and start a fresh session (the server keeps the old one's tracker).
  reset() {
    this.store.clear();
    this.history = [];
    this.pending = [];
    this.withPerson = false;
    this.log.replaceChildren();
    this._hideTyping();
    this.socket.disconnect();
    this.socket.connect();
    this.input.focus();
  }
}

let instance = null;

export function init(options = {}) {
  if (instance) return instance;
  const start = () => {
    instance = new Widget(options);
  };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start, { once: true });
  return instance;
}

const script = document.currentScript;
const globalOptions = (typeof window.WeiquanWidgetConfig === "object" && window.WeiquanWidgetConfig) || {};
window.WeiquanWidget = {
  init: (options = {}) => init({ ...optionsFromScript(script), ...globalOptions, ...options }),
  get instance() {
    return instance;
  },
};
if (!(script && script.hasAttribute("data-manual"))) window.WeiquanWidget.init();
