// 👍/👎 under a ruling or a rule answer (a message with a filing-steps, phone-script or evidence card). Optional: shown
// only when the embedding page gives a feedback URL (data-feedback-url, the operator console's POST /feedback), sent
// without waiting for an answer, and it never blocks the conversation. The console stores it with the bot message it
// rates (weiquan/analytics/feedback.py).
import { el } from "./render.js";

export const RATED_KINDS = new Set(["filing_steps", "phone_script", "evidence"]);

const TEXT = {
  question: "这个回答有帮助吗？",
  up: "有帮助",
  down: "没帮助",
  thanks: "谢谢你的反馈！",
};

export function wantsFeedback(message) {
  return Boolean(message && message.from === "bot" && message.custom && RATED_KINDS.has(message.custom.kind));
}

// A row with the question and two buttons; `onRate("up" | "down")` is called once, then the row says thanks.
export function feedbackRow(onRate) {
  const row = el("div", { class: "wq-feedback" });
  const question = el("span", { class: "wq-feedback-q" }, TEXT.question);
  const buttons = [["up", "👍", TEXT.up], ["down", "👎", TEXT.down]].map(([rating, symbol, label]) => {
    const button = el("button", { class: "wq-feedback-b", type: "button", "aria-label": label }, symbol);
    button.addEventListener("click", () => {
      for (const other of buttons) other.disabled = true;
      button.classList.add("wq-chosen");
      question.textContent = TEXT.thanks;
      onRate(rating);
    });
    return button;
  });
  row.append(question, ...buttons);
  return row;
}

// Fire and forget: a simple cross-origin POST (text/plain, no preflight); nothing waits for it, nothing it does throws.
export function sendFeedback(url, body, fetchImpl = globalThis.fetch) {
  try {
    const sent = fetchImpl(url, {
      method: "POST",
      mode: "no-cors",
      keepalive: true,
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify(body),
    });
    if (sent && typeof sent.catch === "function") sent.catch(() => {});
  } catch {
    // a rating that cannot be sent is simply not counted
  }
}
