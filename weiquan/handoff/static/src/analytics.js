// 服务统计: the analytics page of the operator console. Reads GET /api/analytics?days=N (the analytics store, never the
// live trackers) with the operator token; every string reaches the page through textContent. Built into
// ../analytics.js with chart.js bundled in by `npm run build` in widget/ (no CDN).
import {
  ArcElement, BarController, BarElement, CategoryScale, Chart, DoughnutController, Legend, LinearScale, Tooltip,
} from "chart.js";

Chart.register(ArcElement, BarController, BarElement, CategoryScale, DoughnutController, Legend, LinearScale, Tooltip);

const TOKEN_KEY = "weiquan-console-token"; // the console's own key: one login for both pages
const OUTCOMES = {
  within_window: "期限内（在线投诉）",
  past_window: "已过期限（电话小二）",
  seller: "卖家",
  other_problem: "其他购物问题",
  safety: "人身安全",
  tmall: "天猫订单",
  wait_for_success: "还没交易成功",
  confirm_date: "确认日期中",
  either: "日期不明（两种都说了）",
};
const UNSURE = { fallback: "没听懂（兜底）", clarify: "反问确认", low_confidence: "置信度低" };
const QUESTIONS = {
  platform: "淘宝还是天猫", trade_status: "订单状态", success_time: "交易成功时间", harassment_type: "骚扰方式",
  evidence: "证据", unknown: "（未记录）",
};
const REASONS = { unsure: "没把握", other_problem: "其他问题", handoff: "转人工", rated_down: "用户点了 👎" };
const SPEAKER = { user: "用户", bot: "机器人" };
const COLOR = "#d03c00";
const PALETTE = ["#d03c00", "#0969da", "#1a7f37", "#9a6700", "#8250df", "#59636e", "#bf3989", "#1b7c83", "#c62828"];

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem(TOKEN_KEY), charts: {} };

class Unauthorized extends Error {}

async function get(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(data.message || `请求失败（${response.status}）`);
  }
  return response;
}

function draw(id, type, labels, values, colors) {
  state.charts[id]?.destroy();
  state.charts[id] = new Chart($(id), {
    type,
    data: { labels, datasets: [{ data: values, backgroundColor: colors, borderWidth: type === "doughnut" ? 1 : 0 }] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: type === "doughnut", position: "bottom" } },
      scales: type === "doughnut" ? {} : { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

function show(figures) {
  $("period").textContent = `${figures.from} 至 ${figures.to}`;
  $("t-conversations").textContent = figures.conversations;
  $("t-messages").textContent = figures.messages;
  $("t-unsure").textContent = `${figures.unsure.messages}（${Math.round(figures.unsure.share * 100)}%）`;
  $("t-handoffs").textContent = figures.handoffs;
  const times = figures.handoff_times;
  const minutes = (seconds) => (seconds === null ? "—" : `${Math.round(seconds / 60)} 分钟`);
  $("t-handoff-times").textContent = times.taken
    ? `人工接入 ${times.taken} 次；等待中位 ${minutes(times.wait_median_s)}，处理中位 ${minutes(times.handling_median_s)}`
    : "";
  $("t-lost").textContent = figures.lost;
  $("t-ratings").textContent = `${figures.ratings.up} / ${figures.ratings.down}`;
  draw("c-days", "bar", figures.per_day.map((row) => row.day.slice(5)), figures.per_day.map((row) => row.conversations),
    COLOR);
  const codes = Object.keys(figures.outcomes);
  draw("c-outcomes", "bar", codes.map((code) => OUTCOMES[code] || code), codes.map((code) => figures.outcomes[code]),
    codes.map((_, index) => PALETTE[index % PALETTE.length]));
  const reasons = Object.keys(UNSURE);
  draw("c-unsure", "doughnut", reasons.map((key) => UNSURE[key]), reasons.map((key) => figures.unsure[key]),
    PALETTE.slice(0, reasons.length));
  const form = figures.form;
  $("form-summary").textContent = `开始 ${form.started} 个，得到结论 ${form.ruled} 个；其余停在这一题`;
  const stops = Object.keys(form.stopped_at);
  draw("c-form", "bar", stops.map((slot) => QUESTIONS[slot] || slot), stops.map((slot) => form.stopped_at[slot]), COLOR);
  const body = $("unrecognised");
  body.replaceChildren();
  for (const item of figures.unrecognised) {
    const row = document.createElement("tr");
    for (const value of [item.text, item.count, item.guess || "—"]) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.append(cell);
    }
    body.append(row);
  }
  $("unrecognised-empty").hidden = figures.unrecognised.length > 0;
  showFamilies(figures.new_families || []);
  showComments(figures.comments || []);
}

const RATING = { up: "👍", down: "👎" };

// The buyers' optional comments to their ratings (masked), newest first.
function showComments(comments) {
  const body = $("comments");
  body.replaceChildren();
  for (const comment of comments) {
    const row = document.createElement("tr");
    for (const value of [RATING[comment.rating] || "", comment.comment, comment.response || "—"]) cell(row, value);
    body.append(row);
  }
  $("comments-empty").hidden = comments.length > 0;
}

// The new other-problem families operators named in the review inbox, with how often buyers wrote them.
function showFamilies(families) {
  const body = $("families");
  body.replaceChildren();
  const names = $("family-names");
  names.replaceChildren();
  for (const family of families) {
    const row = document.createElement("tr");
    for (const value of [family.family, family.messages, family.count]) cell(row, value);
    body.append(row);
    const option = document.createElement("option");
    option.value = family.family;
    names.append(option);
  }
  $("families-empty").hidden = families.length > 0;
}

function cell(row, value) {
  const node = document.createElement("td");
  if (value instanceof Node) node.append(value);
  else node.textContent = String(value);
  row.append(node);
  return node;
}

function showReview(listing) {
  const body = $("review");
  body.replaceChildren();
  for (const item of listing.items) {
    const row = document.createElement("tr");
    row.dataset.id = item.id;
    const check = document.createElement("input");
    check.type = "checkbox";
    check.setAttribute("aria-label", `选择：${item.text}`);
    cell(row, check);
    cell(row, item.text);
    cell(row, item.count);
    cell(row, item.reasons.map((reason) => REASONS[reason] || reason).join("、"));
    const select = document.createElement("select");
    select.setAttribute("aria-label", `意图：${item.text}`);
    for (const intent of listing.intents) {
      const option = document.createElement("option");
      option.value = intent;
      option.textContent = intent;
      option.selected = intent === item.guess;
      select.append(option);
    }
    cell(row, select);
    const lines = document.createElement("ul");
    lines.className = "context";
    for (const line of item.context) {
      const entry = document.createElement("li");
      entry.textContent = `${SPEAKER[line.from] || line.from}：${line.text}`;
      lines.append(entry);
    }
    for (const comment of item.comments || []) {
      const entry = document.createElement("li");
      entry.textContent = `用户点 👎 时留言：${comment}`;
      lines.append(entry);
    }
    cell(row, lines);
    body.append(row);
  }
  $("review-empty").hidden = listing.items.length > 0;
}

// `how`: "confirm" (each ticked message with its chosen intent), "dismiss", or "family" (the ticked messages into the
// new other-problem family named in #review-family).
async function decide(how) {
  const rows = [...$("review").querySelectorAll("tr")].filter((row) => row.querySelector("input").checked);
  const family = $("review-family").value.trim();
  if (how === "family" && rows.length && !family) {
    $("review-notice").textContent = "请先填写新类别的名字";
    $("review-family").focus();
    return;
  }
  let done = 0;
  for (const row of rows) {
    const body = how === "dismiss" ? { dismiss: true }
      : how === "family" ? { family } : { intent: row.querySelector("select").value };
    const response = await fetch(`/api/review/${encodeURIComponent(row.dataset.id)}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (response.status === 401) return showLogin("令牌不对或已失效，请重新输入。");
    if (response.ok) done += 1;
  }
  $("review-notice").textContent = rows.length ? `已处理 ${done} 条` : "请先勾选消息";
  await load();
}

// Several at once with the keyboard, from any tick box of the inbox: ↑/↓ (or k/j) move, x ticks, a ticks all,
// c confirms the ticked ones with their chosen intents, d dismisses them, f puts them in the new other-problem family
// named in the box above the table (or goes to that box when it is empty; Enter there does it).
function onReviewKey(event) {
  if (!(event.target instanceof HTMLInputElement) || event.target.type !== "checkbox" || event.ctrlKey || event.metaKey
      || event.altKey) return;
  const boxes = [...$("review").querySelectorAll("input[type=checkbox]")];
  const at = boxes.indexOf(event.target);
  const key = event.key.toLowerCase();
  if (key === "arrowdown" || key === "j") boxes[Math.min(at + 1, boxes.length - 1)].focus();
  else if (key === "arrowup" || key === "k") boxes[Math.max(at - 1, 0)].focus();
  else if (key === "x") event.target.checked = !event.target.checked;
  else if (key === "a") {
    const all = !boxes.every((box) => box.checked);
    for (const box of boxes) box.checked = all;
  } else if (key === "c") decide("confirm");
  else if (key === "d") decide("dismiss");
  else if (key === "f") decide("family");
  else return;
  event.preventDefault();
}

async function load() {
  $("error").textContent = "";
  try {
    show(await (await get(`/api/analytics?days=${encodeURIComponent($("days").value)}`)).json());
    showReview(await (await get("/api/review")).json());
  } catch (error) {
    if (error instanceof Unauthorized) showLogin("令牌不对或已失效，请重新输入。");
    else $("error").textContent = error.message;
  }
}

async function exportCsv() {
  try {
    const response = await get(`/api/analytics.csv?days=${encodeURIComponent($("days").value)}`);
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || "analytics.csv";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  } catch (error) {
    if (error instanceof Unauthorized) showLogin("令牌不对或已失效，请重新输入。");
    else $("error").textContent = error.message;
  }
}

function showLogin(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    state.token = fragment.get("token");
    sessionStorage.setItem(TOKEN_KEY, state.token);
    history.replaceState(null, "", location.pathname);
  }
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
  });
  $("days").addEventListener("change", load);
  $("csv").addEventListener("click", exportCsv);
  $("review-confirm").addEventListener("click", () => decide("confirm"));
  $("review-dismiss").addEventListener("click", () => decide("dismiss"));
  $("review-family-mark").addEventListener("click", () => decide("family"));
  $("review-family").addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    decide("family");
  });
  $("review").addEventListener("keydown", onReviewKey);
  if (state.token) start();
  else showLogin();
});
