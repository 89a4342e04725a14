// The widget's own checks: src/render.js draws every card the presenter really sends, read from the golden file
// tests/golden/contracts.json (written by tests/test_contracts.py from actions/presenter.py). A change of a card's
// shape on the Python side then fails here, not on a buyer's screen. Run with `npm test` (make test-unit does).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { JSDOM } from "jsdom";

const golden = JSON.parse(readFileSync(fileURLToPath(new URL("../../tests/golden/contracts.json", import.meta.url)), "utf8"));
const { window } = new JSDOM("<!doctype html><body></body>");
globalThis.document = window.document;
const { renderMessage } = await import("../src/render.js");

// The fields src/render.js (and widget.js) read from each card: a field renamed or added on the Python side must be
// met by a change here and in the renderer, not by a card that silently draws less.
const READS = {
  filing_steps: ["kind", "paths"], path: ["title", "url", "steps"],
  phone_script: ["kind", "lines"], line: ["speaker", "name", "text"],
  evidence: ["kind", "items"], item: ["code", "label", "url", "have"],
  safety: ["kind"], operator: ["kind", "label"], handoff_status: ["kind", "state"],
};
const keys = (object) => Object.keys(object).sort();

const draw = (card) => renderMessage({ from: "bot", text: "导语", custom: card }, () => {});
const cards = golden.cards;

test("every card has exactly the fields the widget reads", () => {
  assert.deepEqual(keys(cards), ["evidence", "filing_steps", "handoff_status", "operator", "phone_script", "safety"]);
  for (const [kind, card] of Object.entries(cards)) assert.deepEqual(keys(card), [...READS[kind]].sort(), kind);
  for (const path of cards.filing_steps.paths) assert.deepEqual(keys(path), [...READS.path].sort());
  for (const line of cards.phone_script.lines) assert.deepEqual(keys(line), [...READS.line].sort());
  for (const item of cards.evidence.items) assert.deepEqual(keys(item), [...READS.item].sort());
});

test("the filing-steps card lists every path with its link and every step", () => {
  const node = draw(cards.filing_steps);
  const paths = node.querySelectorAll(".wq-card--steps ol.wq-steps > li");
  assert.equal(paths.length, cards.filing_steps.paths.length);
  cards.filing_steps.paths.forEach((path, index) => {
    assert.ok(paths[index].textContent.includes(path.title));
    assert.equal(paths[index].querySelector("a.wq-link").getAttribute("href"), new URL(path.url).href);
    const steps = [...paths[index].querySelectorAll("ol.wq-substeps > li")].map((li) => li.textContent);
    assert.deepEqual(steps, path.steps);
  });
});

test("the phone-script card keeps every line with its speaker's name", () => {
  const node = draw(cards.phone_script);
  const text = node.textContent;
  for (const line of cards.phone_script.lines) assert.ok(text.includes(`${line.name}：${line.text}`), line.text);
});

test("the evidence card ticks exactly what the buyer has", () => {
  const items = draw(cards.evidence).querySelectorAll("ol.wq-evidence > li");
  assert.equal(items.length, cards.evidence.items.length);
  const had = cards.evidence.items.filter((item) => item.have === true).length;
  assert.ok(had > 0, "the golden checklist has an item the buyer has");
  assert.equal(draw(cards.evidence).querySelectorAll(".wq-have").length, had);
  cards.evidence.items.forEach((item, index) => {
    assert.ok(items[index].textContent.includes(item.label));
    assert.equal(items[index].querySelectorAll(".wq-have").length, item.have ? 1 : 0);
  });
});

test("the safety card stands out", () => {
  assert.ok(draw(cards.safety).querySelector(".wq-card--safety"));
});

test("every other card kind still shows its text", () => {
  for (const kind of Object.keys(cards)) {
    const node = draw(cards[kind]);
    assert.ok(node && node.textContent.includes("导语"), kind);
  }
});
