// Hand-off to a person (docs/handoff.md): two kinds of bot_uttered messages drawn differently from the bot's own.
// - custom.kind "handoff_status": a status line ("已转人工，请稍候", "客服已接入", …), text from domain.yml;
// - custom.kind "operator": a message a person typed in the console, marked with custom.label ("人工客服").
// Everything reaches the page through text nodes (el/linkify), never innerHTML.

import { el, linkify } from "./render.js";

// States in which a person has (or is about to take) the conversation: the bot stays silent, so no typing dots.
const WITH_PERSON = new Set(["waiting", "connected"]);

function kindOf(message) {
  return message && message.custom && typeof message.custom === "object" ? message.custom.kind : null;
}

// The DOM for a hand-off message, or null for any other message (render.js draws those).
export function handoffMessage(message) {
  const kind = kindOf(message);
  const text = typeof message.text === "string" ? message.text : "";
  if (message.from === "user" || !text || (kind !== "handoff_status" && kind !== "operator")) return null;
  if (kind === "handoff_status") {
    return el("div", { class: "wq-msg wq-msg--bot wq-msg--status", "data-state": String(message.custom.state || "") },
      el("p", { class: "wq-status-line" }, linkify(text)));
  }
  const label = String(message.custom.label || "");
  const body = el("div", { class: "wq-bubble" });
  for (const line of text.split("\n")) if (line.trim()) body.append(el("p", {}, linkify(line)));
  return el("div", { class: "wq-msg wq-msg--bot wq-msg--operator" },
    el("span", { class: "wq-sr" }, `${label}说：`),
    el("span", { class: "wq-operator-tag", "aria-hidden": "true" }, label),
    body);
}

// Whether a person has the conversation after `message` (undefined: the message does not change it).
export function withPersonAfter(message) {
  if (kindOf(message) !== "handoff_status") return undefined;
  return WITH_PERSON.has(message.custom.state);
}
