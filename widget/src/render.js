// Turns one stored message into DOM. Every user or bot string reaches the page through textContent or a text
// node, never through innerHTML, so a message like <img src=x onerror=alert(1)> is shown as text.

// http(s) URLs up to whitespace or Chinese punctuation; trailing ASCII punctuation is trimmed afterwards.
const URL_RE = /https?:\/\/[^\s<>"'，。；：！？、（）【】「」《》“”‘’]+/g;
const TRAILING_PUNCT = /[.,;:!?)\]}'"]+$/;

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
const ICONS = {
  chat: "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z",
  phone:
    "M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25c1.1.37 2.3.57 3.6.57a1 1 0 0 1 1 1V20a1 1 0 0 1-1 1" +
    "A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z",
  warning: "M12 2 1 21h22L12 2zm1 15h-2v2h2v-2zm0-7h-2v5h2v-5z",
};

// A decorative icon drawn with DOM calls (system fonts have no colour emoji on many machines).
export function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `wq-icon wq-icon--${name}`);
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  path.setAttribute("fill-rule", "evenodd");
  svg.append(path);
  return svg;
}

function safeHref(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// Text with its URLs as links that open in a new tab without handing the page over (noopener).
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    const trailing = url.match(TRAILING_PUNCT);
    if (trailing) url = url.slice(0, -trailing[0].length);
    const href = safeHref(url);
    if (!href) continue;
    fragment.append(document.createTextNode(text.slice(last, match.index)));
    fragment.append(el("a", { href, target: "_blank", rel: "noopener noreferrer", class: "wq-link" }, url));
    last = match.index + url.length;
  }
  fragment.append(document.createTextNode(text.slice(last)));
  return fragment;
}

function paragraphs(text) {
  const box = el("div", { class: "wq-text" });
  for (const line of String(text).split("\n")) {
    if (line.trim()) box.append(el("p", {}, linkify(line)));
  }
  return box;
}

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  return new Promise((resolve, reject) => {
    const area = el("textarea", { readonly: true, "aria-hidden": "true" });
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    (ok ? resolve : reject)();
  });
}

// Cards are drawn from the structured `custom` payload the presenter sends (actions/presenter.py); the message's
// `text` is only the lead-in above the card. No text is parsed here: a new speaker or step in the rule data shows up
// without a change to this file.
//   filing_steps: {paths: [{title, url, steps: [str]}]}
//   phone_script: {lines: [{speaker, name, text}]}
//   evidence:     {items: [{code, label, url|null, have}]}
//   safety:       {}

const list = (value) => (Array.isArray(value) ? value : []);
const str = (value) => (typeof value === "string" ? value : value === null || value === undefined ? "" : String(value));

function leadIn(text) {
  return text.trim() ? paragraphs(text) : null;
}

function scriptLine(line) {
  return `${str(line.name)}：${str(line.text)}`;
}

function phoneScriptCard(text, card) {
  const lines = list(card.lines);
  const copied = lines.map(scriptLine).join("\n");
  const status = el("span", { class: "wq-copy-status", role: "status" });
  const copy = el("button", { type: "button", class: "wq-copy", "aria-label": "复制话术" }, "复制话术");
  copy.addEventListener("click", () => {
    copyText(copied).then(
      () => {
        copy.textContent = "已复制 ✓";
        status.textContent = "话术已复制，可以粘贴到备忘录里照着说";
        setTimeout(() => {
          copy.textContent = "复制话术";
          status.textContent = "";
        }, 2500);
      },
      () => {
        status.textContent = "复制失败，请长按文字手动复制";
      },
    );
  });
  const body = el("div", { class: "wq-script-lines" });
  for (const line of lines) {
    const role = line.speaker === "you" ? "you" : "agent";
    body.append(
      el("p", { class: `wq-line wq-line--${role}`, "data-speaker": str(line.speaker) },
        el("strong", { class: "wq-speaker" }, `${str(line.name)}：`), linkify(str(line.text))),
    );
  }
  return el("div", { class: "wq-card wq-card--script" },
    el("div", { class: "wq-card-head" }, el("span", { class: "wq-card-title" }, icon("phone"), "电话沟通话术"), copy),
    leadIn(text),
    body,
    status);
}

function linkOrText(title, url) {
  const href = safeHref(str(url));
  if (!href) return document.createTextNode(str(title));
  return el("a", { href, target: "_blank", rel: "noopener noreferrer", class: "wq-link" }, str(title) || href);
}

function filingStepsCard(text, card) {
  const paths = el("ol", { class: "wq-steps" });
  for (const path of list(card.paths)) {
    const steps = el("ol", { class: "wq-substeps" });
    for (const step of list(path.steps)) steps.append(el("li", {}, linkify(str(step))));
    const href = safeHref(str(path.url));
    paths.append(el("li", {}, el("strong", {}, str(path.title)), "：",
      href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", class: "wq-link" }, href) : null,
      steps));
  }
  return el("div", { class: "wq-card wq-card--steps" }, leadIn(text), paths);
}

function evidenceCard(text, card) {
  const items = el("ol", { class: "wq-evidence" });
  for (const item of list(card.items)) {
    const have = item.have === true;
    items.append(el("li", { class: have ? "wq-evidence-item wq-evidence-item--have" : "wq-evidence-item" },
      have ? el("span", { class: "wq-have", "aria-label": "已有" }, "✓") : null,
      str(item.label),
      item.url ? " " : null,
      item.url ? linkOrText(item.url, item.url) : null));
  }
  return el("div", { class: "wq-card wq-card--evidence" }, leadIn(text), items);
}

function safetyCard(text) {
  return el("div", { class: "wq-card wq-card--safety" },
    el("p", { class: "wq-card-title wq-safety-title" }, icon("warning"), "人身安全第一"),
    paragraphs(text));
}

function bubble(message) {
  const card = message.custom && typeof message.custom === "object" ? message.custom : null;
  const kind = card ? card.kind : null;
  const text = typeof message.text === "string" ? message.text : "";
  if (message.from === "user") return el("div", { class: "wq-bubble" }, paragraphs(text));
  if (kind === "phone_script") return phoneScriptCard(text, card);
  if (kind === "filing_steps") return filingStepsCard(text, card);
  if (kind === "evidence") return evidenceCard(text, card);
  if (kind === "safety") return safetyCard(text);
  if (!text) return null;
  return el("div", { class: "wq-bubble" }, paragraphs(text));
}

// One message: a list item with a screen-reader speaker label, the bubble or card, and quick replies.
export function renderMessage(message, onQuickReply) {
  const item = el("div", { class: `wq-msg wq-msg--${message.from === "user" ? "user" : "bot"}` },
    el("span", { class: "wq-sr" }, message.from === "user" ? "我说：" : "助手说："));
  const body = bubble(message);
  if (body) item.append(body);
  const replies = Array.isArray(message.quick_replies) ? message.quick_replies : [];
  if (replies.length) {
    const group = el("div", { class: "wq-quick", role: "group", "aria-label": "快捷回复" });
    for (const reply of replies) {
      const title = String(reply.title ?? "");
      const payload = String(reply.payload ?? title);
      const button = el("button", { type: "button", class: "wq-quick-btn" }, title);
      button.addEventListener("click", () => onQuickReply(title, payload, button));
      group.append(button);
    }
    item.append(group);
  }
  if (!body && !replies.length) return null;
  return item;
}
