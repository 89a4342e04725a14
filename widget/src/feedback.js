// 👍/👎 under a ruling or a rule answer (a message with a filing-steps, phone-script or evidence card). Optional: shown
// only when the embedding page gives a feedback URL (data-feedback-url, the operator console's POST /feedback), sent
// without waiting for an answer, and it never blocks the conversation. The console stores it with the bot message it
// rates (weiquan/analytics/feedback.py). After a rating the row offers an optional short comment, sent as a second
// POST with the same rating (the console adds it to that rating, it does not count the rating twice); nothing waits
// for it and the chat input stays free.
import { el } from "./render.js";

export const RATED_KINDS = new Set(["filing_steps", "phone_script", "evidence"]);
// weiquan/analytics/feedback.py MAX_COMMENT_CHARS: the console refuses longer ones (tests/test_analytics_console.py
// checks that the two agree).
export const MAX_COMMENT_CHARS = 200;

const TEXT = {
  question: "这个回答有帮助吗？",
  up: "有帮助",
  down: "没帮助",
  thanks: "谢谢你的反馈！",
  commentLabel: "补充说明（选填）",
  commentHintDown: "哪里没帮到你？可以简单说说（选填）",
  commentHintUp: "还想补充什么吗？（选填）",
  commentSend: "提交",
  commentThanks: "收到你的补充，谢谢！",
};

// The optional comment after a rating: one line of at most MAX_COMMENT_CHARS, Enter or 提交 sends it once.
export function commentForm(rating, onComment) {
  const form = el("form", { class: "wq-feedback-more" });
  const input = el("input", {
    type: "text", class: "wq-feedback-c", maxlength: MAX_COMMENT_CHARS, autocomplete: "off",
    "aria-label": TEXT.commentLabel, placeholder: rating === "down" ? TEXT.commentHintDown : TEXT.commentHintUp,
  });
  const button = el("button", { class: "wq-feedback-b", type: "submit" }, TEXT.commentSend);
  // Layout through the style properties (allowed under the page's CSP, unlike style attributes).
  Object.assign(form.style, { display: "flex", gap: "6px", flexBasis: "100%" });
  Object.assign(input.style, { flex: "1", minWidth: "0", font: "inherit" });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const comment = input.value.trim().slice(0, MAX_COMMENT_CHARS);
    if (!comment) return;
    form.replaceChildren(el("span", { class: "wq-feedback-q" }, TEXT.commentThanks));
    onComment(comment);
  });
  form.append(input, button);
  return form;
}

export function wantsFeedback(message) {
  return Boolean(message && message.from === "bot" && message.custom && RATED_KINDS.has(message.custom.kind));
}

// A row with the question and two buttons; `onRate("up" | "down")` is called once, then the row says thanks and,
// given `onComment(rating, comment)`, offers the optional comment box.
export function feedbackRow(onRate, onComment = null) {
  const row = el("div", { class: "wq-feedback" });
  row.style.flexWrap = "wrap";
  const question = el("span", { class: "wq-feedback-q" }, TEXT.question);
  const buttons = [["up", "👍", TEXT.up], ["down", "👎", TEXT.down]].map(([rating, symbol, label]) => {
    const button = el("button", { class: "wq-feedback-b", type: "button", "aria-label": label }, symbol);
    button.addEventListener("click", () => {
      for (const other of buttons) other.disabled = true;
      button.classList.add("wq-chosen");
      question.textContent = TEXT.thanks;
      onRate(rating);
      if (onComment) row.append(commentForm(rating, (comment) => onComment(rating, comment)));
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
