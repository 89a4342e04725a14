// The 👍/👎 row (src/feedback.js): shown under rulings and rule answers only, one rating per row, and sending it can
// never throw into the conversation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { JSDOM } from "jsdom";

const golden = JSON.parse(readFileSync(fileURLToPath(new URL("../../tests/golden/contracts.json", import.meta.url)), "utf8"));
const { window } = new JSDOM("<!doctype html><body></body>");
globalThis.document = window.document;
const feedbackModule = await import("../src/feedback.js");
const { feedbackRow, sendFeedback, wantsFeedback } = feedbackModule;

test("only a ruling or a rule answer asks for a rating", () => {
  for (const kind of ["filing_steps", "phone_script", "evidence"]) {
    assert.equal(wantsFeedback({ from: "bot", text: "导语", custom: golden.cards[kind] }), true, kind);
  }
  for (const kind of ["safety", "operator", "handoff_status"]) {
    assert.equal(wantsFeedback({ from: "bot", text: "导语", custom: golden.cards[kind] }), false, kind);
  }
  assert.equal(wantsFeedback({ from: "bot", text: "你好" }), false);
  assert.equal(wantsFeedback({ from: "user", text: "x", custom: golden.cards.evidence }), false);
});

test("a rating is given once, then the row thanks the buyer", () => {
  const given = [];
  const row = feedbackRow((rating) => given.push(rating));
  const [up, down] = row.querySelectorAll("button");
  assert.deepEqual([up.getAttribute("aria-label"), down.getAttribute("aria-label")], ["有帮助", "没帮助"]);
  down.click();
  up.click(); // disabled now: nothing more is sent
  assert.deepEqual(given, ["down"]);
  assert.equal(up.disabled && down.disabled, true);
  assert.match(row.textContent, /谢谢你的反馈/);
});

test("sending a rating never throws and posts the rating as plain text", async () => {
  const calls = [];
  sendFeedback("http://127.0.0.1:8090/feedback", { sender_id: "s1", rating: "up" }, (url, init) => {
    calls.push([url, init]);
    return Promise.reject(new Error("offline"));
  });
  sendFeedback("http://127.0.0.1:8090/feedback", { sender_id: "s1", rating: "up" }, () => { throw new Error("no fetch"); });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(calls.length, 1);
  assert.equal(calls[0][1].headers["Content-Type"], "text/plain;charset=UTF-8");
  assert.deepEqual(JSON.parse(calls[0][1].body), { sender_id: "s1", rating: "up" });
});

test("after a rating the buyer may add a short comment, sent once with the same rating", () => {
  const { MAX_COMMENT_CHARS } = feedbackModule;
  const rated = [];
  const comments = [];
  const row = feedbackRow((rating) => rated.push(rating), (rating, comment) => comments.push([rating, comment]));
  document.body.append(row);
  assert.equal(row.querySelector("input"), null); // no box before a rating
  row.querySelectorAll("button")[1].click();
  const input = row.querySelector("input.wq-feedback-c");
  assert.ok(input, "a comment box after 👎");
  assert.equal(input.maxLength, MAX_COMMENT_CHARS);
  assert.match(input.placeholder, /选填/);
  const form = row.querySelector("form");
  form.dispatchEvent(new window.Event("submit", { cancelable: true })); // empty: nothing sent, box stays
  assert.deepEqual(comments, []);
  input.value = `  说的期限不对  ${"字".repeat(300)}`;
  form.dispatchEvent(new window.Event("submit", { cancelable: true }));
  assert.deepEqual(rated, ["down"]);
  assert.equal(comments.length, 1);
  assert.equal(comments[0][0], "down");
  assert.equal(comments[0][1].length, MAX_COMMENT_CHARS);
  assert.ok(comments[0][1].startsWith("说的期限不对"));
  assert.equal(row.querySelector("input"), null);
  assert.match(row.textContent, /收到你的补充/);
  row.remove();
});

test("without a comment handler the row only rates", () => {
  const row = feedbackRow(() => {});
  row.querySelectorAll("button")[0].click();
  assert.equal(row.querySelector("form"), null);
});
