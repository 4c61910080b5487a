// agentcron console: one ES module, no build step, no dependency.
//
// It is a client of the public HTTP API (/api/v1/schedules, as curl and the SDKs use it).
// Rules this file keeps:
// * every string from the API reaches the page as text (DOM nodes and textContent, never
//   HTML strings; the page's CSP requires Trusted Types, so an innerHTML would throw);
// * the API key lives in this tab's sessionStorage and travels only as
//   "Authorization: Bearer" on same-origin fetches (never in a URL, never in a cookie);
// * errors are the API's own messages ({"error": …}), shown next to what caused them.

const API = new URL("..", import.meta.url); // the API root: this module is at <root>/console/
const KEY_SLOT = "agentcron.apiKey";
const HISTORY_PAGE = 20;
const SPEND_DAYS = 30;
const RUN_PAGE = 100; // runs per request when summing spend from history
const MAX_RUN_PAGES = 10; // per schedule and refresh; beyond this the sums are marked partial
const POLL_MS = 1000;
const POLL_LIMIT_MS = 15 * 60 * 1000;
const PREVIEW_DELAY_MS = 250;
const VIEWER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone;

// --------------------------------------------------------------------------------------
// DOM helpers: elements and text nodes only.

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  appendAll(el, children);
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  appendAll(el, children);
  return el;
}

function setProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function appendAll(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

function field(labelText, control, hint) {
  const id = control.id || nextId("f");
  control.id = id;
  const parts = [h("label", { for: id }, labelText), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

function notice(kind, text, role) {
  return h("div", { class: `notice ${kind}`, role: role || (kind === "error" ? "alert" : "status") }, text);
}

function setMessage(box, kind, text) {
  box.className = `notice ${kind}`;
  box.textContent = text || "";
}

// --------------------------------------------------------------------------------------
// Formatting.

function parseTime(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function formatIn(date, timeZone) {
  if (!date) return "—";
  const options = {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short",
  };
  try {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone }).format(date);
  } catch {
    return date.toISOString();
  }
}

const formatLocal = (date) => formatIn(date, VIEWER_TZ);

function money(value) {
  const n = Number(value) || 0;
  const digits = n === 0 || n >= 1 ? 2 : n >= 0.01 ? 4 : 6;
  return new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: digits,
  }).format(n);
}

function duration(ms) {
  if (ms === undefined || ms === null) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function minutesText(minutes) {
  const m = Math.round(Number(minutes) || 0);
  if (m % 1440 === 0 && m >= 1440) return m === 1440 ? "1 day" : `${m / 1440} days`;
  if (m % 60 === 0 && m >= 60) return m === 60 ? "1 hour" : `${m / 60} hours`;
  return m === 1 ? "1 minute" : `${m} minutes`;
}

function excerpt(text, max = 160) {
  if (!text) return "";
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function dayKey(date) {
  const y = date.getFullYear();
  const m = String(date.getMonth() + 1).padStart(2, "0");
  const d = String(date.getDate()).padStart(2, "0");
  return `${y}-${m}-${d}`;
}

const RUN_STATUS = {
  COMPLETED: ["ok", "Completed"],
  FAILED: ["bad", "Failed"],
  TIMEOUT: ["bad", "Timed out"],
  BUDGET_EXCEEDED: ["warn", "Budget exceeded"],
  SKIPPED: ["mute", "Skipped"],
  RUNNING: ["info", "Running"],
  PENDING: ["info", "Pending"],
};

function runBadge(status) {
  const [kind, text] = RUN_STATUS[status] || ["mute", String(status || "unknown")];
  return h("span", { class: `badge ${kind}`, "data-status": status }, text);
}

function scheduleBadge(schedule) {
  return schedule.status === "PAUSED"
    ? h("span", { class: "badge warn", "data-status": "PAUSED" }, "Paused")
    : h("span", { class: "badge ok", "data-status": "ACTIVE" }, "Active");
}

function pauseDetail(schedule) {
  if (schedule.status !== "PAUSED") return null;
  const parts = [];
  if (schedule.pause_reason === "consecutive_failures") {
    parts.push(`${schedule.consecutive_failures} failed runs in a row`);
  } else if (schedule.pause_reason) parts.push(schedule.pause_reason);
  if (schedule.paused_by) parts.push(`by ${schedule.paused_by}`);
  const when = parseTime(schedule.paused_at);
  if (when) parts.push(formatLocal(when));
  return parts.length ? h("span", { class: "cell-sub pause-detail" }, parts.join(" · ")) : null;
}

// --------------------------------------------------------------------------------------
// The API.

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

const session = {
  get key() { return sessionStorage.getItem(KEY_SLOT); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY_SLOT, value);
    else sessionStorage.removeItem(KEY_SLOT);
  },
};

async function api(method, path, body, key = session.key) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(path, API), init);
  } catch (err) {
    throw new ApiError(0, `Cannot reach the API: ${err.message || err}`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data && (data.error || data.detail || data.message);
    throw new ApiError(response.status, String(message || `HTTP ${response.status}`), data);
  }
  return data;
}

const schedulePath = (id, rest = "") => `api/v1/schedules/${encodeURIComponent(id)}${rest}`;

async function listAllSchedules() {
  const all = [];
  for (let page = 1; page <= 100; page += 1) {
    const body = await api("GET", `api/v1/schedules?page=${page}&page_size=100&status=ALL`);
    all.push(...body.schedules);
    if (all.length >= body.total || body.schedules.length === 0) break;
  }
  return all;
}

async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// Descriptions depend on the expression only; the list endpoint does not carry them.
const descriptions = new Map();
async function describe(schedule) {
  if (!descriptions.has(schedule.cron_expression)) {
    const pending = api("GET", schedulePath(schedule.id, "/preview?count=1"))
      .then((p) => p.description)
      .catch(() => null);
    descriptions.set(schedule.cron_expression, pending);
  }
  return descriptions.get(schedule.cron_expression);
}

// One refresh's view of the run history: the first page of each schedule is shared
// between "last run" and the spend sums.
class RunHistory {
  constructor() { this.pages = new Map(); }

  page(id, n) {
    const key = `${id}#${n}`;
    if (!this.pages.has(key)) {
      this.pages.set(key, api("GET", schedulePath(id, `/runs?page=${n}&page_size=${RUN_PAGE}`)));
    }
    return this.pages.get(key);
  }

  async latest(id) {
    const first = await this.page(id, 1);
    return first.runs[0] || null;
  }

  // Runs newest first, back to `start` (a Date); `partial` when the page cap was hit.
  async since(id, start) {
    const runs = [];
    for (let n = 1; n <= MAX_RUN_PAGES; n += 1) {
      const body = await this.page(id, n);
      runs.push(...body.runs);
      const oldest = body.runs.length ? parseTime(body.runs[body.runs.length - 1].triggered_at) : null;
      if (body.runs.length < RUN_PAGE || !oldest || oldest < start) return { runs, partial: false };
    }
    return { runs, partial: true };
  }
}

// --------------------------------------------------------------------------------------
// Spend: the one place that knows where spend figures come from.
//
// GET api/v1/usage?from=&to=&group_by=schedule answers on deployments with spend control
// (one Query of the caller's daily rollups; days are UTC); on an older deployment it is
// 404/403 and the figures are summed from the run history of the schedules that exist.
// The usage shape read here:
//   {"month_to_date_usd": n,
//    "caps": [{"scope": "user", "monthly_usd": n, "used_usd": n, "remaining_usd": n}],
//    "groups": [{"schedule_id": id, "month_to_date_usd": n,
//                "daily": [{"date": "YYYY-MM-DD", "cost_usd": n}]}]}

let usageEndpoint; // undefined = not probed yet, false = absent in this deployment

function spendWindow(now = new Date()) {
  const days = [];
  for (let i = SPEND_DAYS - 1; i >= 0; i -= 1) {
    const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - i);
    days.push(dayKey(d));
  }
  const first = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (SPEND_DAYS - 1));
  const monthStart = new Date(now.getFullYear(), now.getMonth(), 1);
  return { days, monthStart, start: first < monthStart ? first : monthStart };
}

function emptySpend(source) {
  return { source, monthToDate: 0, caps: [], daily: new Map(), bySchedule: new Map(), partial: false };
}

async function loadSpend(schedules, history, win = spendWindow()) {
  if (usageEndpoint !== false) {
    try {
      const range = `from=${win.days[0]}&to=${win.days[win.days.length - 1]}`;
      const usage = await api("GET", `api/v1/usage?${range}&group_by=schedule`);
      usageEndpoint = true;
      return spendFromUsage(usage, schedules);
    } catch (err) {
      if (!(err instanceof ApiError) || ![403, 404, 405, 501].includes(err.status)) throw err;
      usageEndpoint = false;
    }
  }
  return spendFromHistory(schedules, history, win);
}

function spendFromUsage(usage, schedules) {
  const spend = emptySpend("usage");
  spend.monthToDate = Number(usage.month_to_date_usd) || 0;
  spend.caps = (usage.caps || []).map((c) => ({
    label: c.scope ? `${c.scope} monthly cap` : "monthly cap",
    limit: Number(c.monthly_usd),
    used: Number(c.used_usd),
  }));
  // The total per day counts deleted schedules too; the per-schedule figures only the
  // schedules shown.
  const wanted = new Set(schedules.map((s) => s.id));
  for (const s of usage.groups || []) {
    const daily = new Map((s.daily || []).map((d) => [d.date, Number(d.cost_usd) || 0]));
    for (const [day, cost] of daily) spend.daily.set(day, (spend.daily.get(day) || 0) + cost);
    if (!wanted.has(s.schedule_id)) continue;
    spend.bySchedule.set(s.schedule_id, { monthToDate: Number(s.month_to_date_usd) || 0, daily });
  }
  return spend;
}

async function spendFromHistory(schedules, history, win) {
  const spend = emptySpend("history");
  const inWindow = new Set(win.days);
  await mapLimit(schedules, 4, async (schedule) => {
    const { runs, partial } = await history.since(schedule.id, win.start);
    spend.partial ||= partial;
    const mine = { monthToDate: 0, daily: new Map() };
    for (const run of runs) {
      const cost = Number(run.total_cost_usd) || 0;
      const when = parseTime(run.started_at || run.triggered_at);
      if (!cost || !when) continue;
      if (when >= win.monthStart) mine.monthToDate += cost;
      const key = dayKey(when);
      if (inWindow.has(key)) mine.daily.set(key, (mine.daily.get(key) || 0) + cost);
    }
    spend.bySchedule.set(schedule.id, mine);
  });
  for (const mine of spend.bySchedule.values()) {
    spend.monthToDate += mine.monthToDate;
    for (const [key, cost] of mine.daily) spend.daily.set(key, (spend.daily.get(key) || 0) + cost);
  }
  return spend;
}

// One schedule's share, for its own page (caps are per user or tenant, not per schedule).
function scheduleSpend(spend, id) {
  const mine = spend.bySchedule.get(id) || { monthToDate: 0, daily: new Map() };
  return { ...spend, monthToDate: mine.monthToDate, daily: mine.daily, caps: [] };
}

function spendSource(spend) {
  if (spend.source === "usage") return "From the usage endpoint (days are UTC).";
  const partial = spend.partial ? " Very long histories are summed in part." : "";
  return `Summed from the run history of the schedules shown (deleted schedules are not counted).${partial}`;
}

// --------------------------------------------------------------------------------------
// Charts: inline SVG, marks coloured by class (the CSP forbids style attributes).

function dailyChart(days, daily, label) {
  const width = 720;
  const height = 140;
  const left = 8;
  const bottom = 20;
  const top = 14;
  const values = days.map((d) => daily.get(d) || 0);
  const max = Math.max(...values, 0);
  const total = values.reduce((a, b) => a + b, 0);
  const slot = (width - left * 2) / days.length;
  const plot = height - bottom - top;
  const bars = days.map((day, i) => {
    const v = values[i];
    const barHeight = max > 0 ? Math.max((v / max) * plot, v > 0 ? 2 : 0) : 0;
    const x = left + i * slot + 1;
    const mark = v > 0
      ? svg("rect", { class: "bar", x, y: top + plot - barHeight, width: Math.max(slot - 2, 1), height: barHeight })
      : svg("rect", { class: "bar zero", x, y: top + plot - 1, width: Math.max(slot - 2, 1), height: 1 });
    mark.append(svg("title", {}, `${day}: ${money(v)}`));
    return mark;
  });
  const ticks = [0, 7, 14, 21, days.length - 1].map((i) =>
    svg("text", { x: left + i * slot + slot / 2, y: height - 5, "text-anchor": "middle" }, days[i].slice(5)),
  );
  const summary = `${label}: ${money(total)} over the last ${days.length} days; highest day ${money(max)}.`;
  return h(
    "figure", { class: "chart" },
    svg(
      "svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary },
      svg("line", { class: "axis", x1: left, x2: width - left, y1: top + plot, y2: top + plot }),
      svg("text", { x: width - left, y: 10, "text-anchor": "end" }, `max ${money(max)}/day`),
      bars, ticks,
    ),
    h("figcaption", { class: "muted small" }, summary),
  );
}

function meter(used, limit) {
  const share = limit > 0 ? Math.min(used / limit, 1) : 0;
  const label = `${money(used)} of ${money(limit)} (${Math.round((used / limit) * 100)}%)`;
  return svg(
    "svg", { class: "meter", viewBox: "0 0 200 8", preserveAspectRatio: "none", role: "img", "aria-label": label },
    svg("rect", { class: "track", x: 0, y: 0, width: 200, height: 8, rx: 3 }),
    svg("rect", { class: used > limit ? "used over" : "used", x: 0, y: 0, width: 200 * share, height: 8, rx: 3 }),
  );
}

function spendPanel(spend, schedules, title) {
  const win = spendWindow();
  const caps = spend.caps.filter((c) => Number.isFinite(c.limit) && c.limit > 0);
  const capLines = caps.length
    ? caps.map((c) => {
        // A cap's own counter (a tenant cap counts the whole tenant), else the month to date.
        const used = Number.isFinite(c.used) ? c.used : spend.monthToDate;
        return h("div", { class: "cap" },
          h("p", {}, `${money(used)} of the ${c.label} of ${money(c.limit)}`), meter(used, c.limit));
      })
    : [h("p", { class: "muted small" }, "No monthly spend cap is reported by this deployment; each run is bounded by its own budget.")];
  const summary = [
    h("p", { class: "muted small" }, "Month to date"),
    h("p", { class: "stat", "data-testid": "mtd" }, money(spend.monthToDate)),
    capLines,
  ];
  if (schedules.length > 1) {
    const ranked = schedules
      .map((s) => ({ s, mtd: (spend.bySchedule.get(s.id) || { monthToDate: 0 }).monthToDate }))
      .filter((x) => x.mtd > 0)
      .sort((a, b) => b.mtd - a.mtd)
      .slice(0, 8);
    if (ranked.length) {
      const top = ranked[0].mtd;
      summary.push(h("h3", {}, "Month to date by schedule"), h("ul", { class: "by-schedule" },
        ranked.map(({ s, mtd }) => h("li", {},
          h("a", { class: "label", href: `#/schedules/${encodeURIComponent(s.id)}` }, s.name),
          svg("svg", { class: "meter", viewBox: "0 0 200 8", preserveAspectRatio: "none", "aria-hidden": "true" },
            svg("rect", { class: "used", x: 0, y: 0, width: Math.max((mtd / top) * 200, 2), height: 8, rx: 3 })),
          h("span", { class: "num" }, money(mtd))))));
    }
  }
  return h("section", { class: "panel spend", "aria-label": title },
    h("h2", {}, title),
    h("div", { class: "spend-grid" },
      h("div", {}, summary),
      h("div", {}, h("p", { class: "muted small" }, `Cost per day, last ${SPEND_DAYS} days`), dailyChart(win.days, spend.daily, "Cost per day"))),
    h("p", { class: "muted small" }, spendSource(spend)));
}

// --------------------------------------------------------------------------------------
// Dialogs (native <dialog>: focus is trapped and Escape cancels).

function ask({ title, text, confirm, danger = false, reasonLabel = null }) {
  return new Promise((resolve) => {
    const titleId = nextId("dlg");
    const reason = reasonLabel ? h("input", { type: "text", maxlength: "1024", autocomplete: "off" }) : null;
    const ok = h("button", { type: "submit", class: danger ? "danger" : "" }, confirm);
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const form = h("form", { method: "dialog" },
      h("h2", { id: titleId }, title),
      text ? h("p", {}, text) : null,
      reason ? field(reasonLabel, reason) : null,
      h("div", { class: "actions" }, cancel, ok));
    const dialog = h("dialog", { "aria-labelledby": titleId }, form);
    let answer = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      answer = { reason: reason ? reason.value.trim() : "" };
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { dialog.remove(); resolve(answer); });
    document.body.append(dialog);
    dialog.showModal();
    (reason || ok).focus();
  });
}

// --------------------------------------------------------------------------------------
// Views. Each render gets a fresh token; timers of a replaced view stop themselves.

const main = () => document.getElementById("main");
let viewToken = 0;
let flash = null; // one message carried to the next view

function show(view, { focus = true } = {}) {
  main().replaceChildren(view);
  if (focus) {
    const heading = view.querySelector("h1");
    if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
  }
}

function takeFlash() {
  const message = flash;
  flash = null;
  return message ? notice(message.kind, message.text) : null;
}

function go(hash, message) {
  if (message) flash = message;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signOut(message) {
  session.key = null;
  descriptions.clear();
  usageEndpoint = undefined;
  flash = message ? { kind: "error", text: message } : { kind: "info", text: "Signed out. The key was removed from this tab." };
  if (location.hash && location.hash !== "#/") history.replaceState(null, "", "#/");
  route();
}

// A failed call: a rejected key ends the session; anything else is shown where it happened.
function failed(err, box) {
  if (err instanceof ApiError && err.status === 401) {
    signOut(`Your API key was not accepted (${err.message}). Sign in again.`);
    return;
  }
  if (box) setMessage(box, "error", err.message || String(err));
  else console.error(err);
}

function sessionBar() {
  const signedIn = Boolean(session.key);
  document.getElementById("session").hidden = !signedIn;
  const key = session.key || "";
  document.getElementById("session-who").textContent = signedIn ? `Signed in with key …${key.slice(-4)}` : "";
}

// --- sign in ---------------------------------------------------------------------------

function signInView() {
  const input = h("input", { type: "password", name: "api-key", autocomplete: "off", spellcheck: "false", required: true, "aria-required": "true" });
  const error = h("div", { class: "notice error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "panel signin", novalidate: true },
    h("h1", {}, "Sign in"),
    h("p", {}, "Use an agentcron API key. ", h("code", {}, "make run"), " prints one; ",
      h("code", {}, "python -m chalicelib.admin create-key"), " mints more."),
    takeFlash(),
    field("API key", input, "Kept in this browser tab only (sessionStorage) and sent as a Bearer token."),
    error,
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) { setMessage(error, "error", "Enter an API key."); input.focus(); return; }
    submit.disabled = true;
    try {
      await api("GET", "api/v1/schedules?page=1&page_size=1", undefined, key);
      session.key = key;
      go("#/", { kind: "success", text: "Signed in." });
    } catch (err) {
      const reason = err instanceof ApiError && err.status === 401
        ? `That key was not accepted: ${err.message}.`
        : err.message;
      setMessage(error, "error", reason);
      input.setAttribute("aria-invalid", "true");
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  show(form, { focus: false });
  input.focus();
}

// --- overview --------------------------------------------------------------------------

const overviewPrefs = { filter: "ALL", sort: "name", dir: 1 };

const SORTS = {
  name: (r) => r.s.name.toLowerCase(),
  status: (r) => r.s.status,
  next: (r) => (parseTime(r.s.next_run_at) || { getTime: () => Infinity }).getTime(),
  last: (r) => (r.last ? (parseTime(r.last.triggered_at) || new Date(0)).getTime() : -Infinity),
  spend: (r) => r.mtd,
};

async function overviewView() {
  const flashBox = takeFlash();
  const token = viewToken;
  show(h("div", {}, h("h1", {}, "Schedules"), flashBox, h("p", { class: "muted", role: "status" }, "Loading schedules…")));
  let schedules;
  let rows;
  let spend;
  try {
    schedules = await listAllSchedules();
    const history = new RunHistory();
    const [lastRuns, texts, loaded] = await Promise.all([
      mapLimit(schedules, 4, (s) => history.latest(s.id)),
      mapLimit(schedules, 4, (s) => describe(s)),
      loadSpend(schedules, history),
    ]);
    spend = loaded;
    rows = schedules.map((s, i) => ({
      s, last: lastRuns[i], description: texts[i],
      mtd: (spend.bySchedule.get(s.id) || { monthToDate: 0 }).monthToDate,
    }));
  } catch (err) {
    if (token !== viewToken) return;
    const box = h("div", { class: "notice error", role: "alert" });
    show(h("div", {}, h("h1", {}, "Schedules"), box,
      h("button", { type: "button", onclick: () => route() }, "Try again")));
    failed(err, box);
    return;
  }
  if (token !== viewToken) return;

  const newLink = h("a", { class: "button", href: "#/new" }, "New schedule");
  if (!schedules.length) {
    show(h("div", {},
      h("h1", {}, "Schedules"), flashBox,
      h("section", { class: "panel empty", "data-testid": "empty" },
        h("h2", {}, "No schedules yet"),
        h("p", {}, "A schedule runs an agent on a cron expression, in its own time zone, within a budget per run."),
        newLink)));
    return;
  }

  const tableHolder = h("div", {});
  const filter = h("select", { id: "status-filter" },
    [["ALL", "All"], ["ACTIVE", "Active"], ["PAUSED", "Paused"]].map(([v, t]) =>
      h("option", { value: v, selected: overviewPrefs.filter === v }, t)));
  filter.value = overviewPrefs.filter;
  filter.addEventListener("change", () => { overviewPrefs.filter = filter.value; drawTable(); });
  const refresh = h("button", { type: "button", class: "secondary", onclick: () => route() }, "Refresh");

  function drawTable() {
    const visible = rows.filter((r) => overviewPrefs.filter === "ALL" || r.s.status === overviewPrefs.filter);
    const key = SORTS[overviewPrefs.sort];
    visible.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * overviewPrefs.dir || a.s.name.localeCompare(b.s.name);
    });
    const header = (id, text, cls) => {
      const active = overviewPrefs.sort === id;
      const button = h("button", { type: "button", class: "sort" }, text,
        h("span", { "aria-hidden": "true" }, active ? (overviewPrefs.dir > 0 ? " ▲" : " ▼") : ""));
      button.addEventListener("click", () => {
        overviewPrefs.dir = active ? -overviewPrefs.dir : 1;
        overviewPrefs.sort = id;
        drawTable();
        tableHolder.querySelector(`th[data-sort="${id}"] button`).focus();
      });
      return h("th", { scope: "col", class: cls, "data-sort": id,
        "aria-sort": active ? (overviewPrefs.dir > 0 ? "ascending" : "descending") : null }, button);
    };
    const body = visible.map(({ s, last, description, mtd }) => h("tr", { "data-schedule-id": s.id },
      h("th", { scope: "row" },
        h("a", { href: `#/schedules/${encodeURIComponent(s.id)}`, class: "schedule-link" }, s.name),
        s.description ? h("span", { class: "cell-sub" }, excerpt(s.description, 80)) : null),
      h("td", {}, scheduleBadge(s), pauseDetail(s)),
      h("td", {}, h("code", {}, s.cron_expression), description ? h("span", { class: "cell-sub" }, description) : null),
      h("td", {}, s.timezone),
      h("td", { class: "nowrap" }, nextFire(s)),
      h("td", {}, last
        ? [runBadge(last.status), h("span", { class: "cell-sub" }, `${money(last.total_cost_usd)} · ${formatLocal(parseTime(last.triggered_at))}`)]
        : h("span", { class: "muted" }, "never run")),
      h("td", { class: "num" }, money(mtd))));
    const table = h("table", { id: "schedules" },
      h("caption", { class: "visually-hidden" }, "Schedules: sort by a column heading"),
      h("thead", {}, h("tr", {},
        header("name", "Name"), header("status", "Status"),
        h("th", { scope: "col" }, "Cron"), h("th", { scope: "col" }, "Time zone"),
        header("next", "Next fire"), header("last", "Last run"), header("spend", "Month to date", "num"))),
      h("tbody", {}, body));
    const shown = visible.length
      ? h("div", { class: "table-wrap", role: "region", "aria-label": "Schedules table", tabindex: "0" }, table)
      : h("p", { class: "panel empty", "data-testid": "filtered-empty" }, `No ${overviewPrefs.filter.toLowerCase()} schedules.`);
    tableHolder.replaceChildren(shown,
      h("p", { class: "muted small", role: "status" }, `${visible.length} of ${rows.length} schedules shown. Times are shown in the schedule's time zone and in yours (${VIEWER_TZ}).`));
  }

  drawTable();
  show(h("div", {},
    h("h1", {}, "Schedules"), flashBox,
    h("div", { class: "toolbar" },
      h("div", { class: "inline-field" }, h("label", { for: "status-filter" }, "Status"), filter),
      h("span", { class: "spacer" }), refresh, newLink),
    tableHolder,
    spendPanel(spend, schedules, "Spend")));
}

function nextFire(schedule) {
  const when = parseTime(schedule.next_run_at);
  if (!when) {
    return h("span", { class: "muted" }, schedule.status === "PAUSED" ? "paused" : "none");
  }
  return [h("span", {}, formatIn(when, schedule.timezone)),
    h("span", { class: "cell-sub" }, `yours: ${formatLocal(when)}`)];
}

// --- schedule detail -------------------------------------------------------------------

async function detailView(id) {
  const flashBox = takeFlash();
  const token = viewToken;
  show(h("div", {}, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← All schedules")),
    h("h1", {}, "Schedule"), h("p", { class: "muted", role: "status" }, "Loading…")));
  let schedule;
  let preview;
  try {
    [schedule, preview] = await Promise.all([
      api("GET", schedulePath(id)),
      api("GET", schedulePath(id, "/preview?count=5")).catch(() => null),
    ]);
  } catch (err) {
    if (token !== viewToken) return;
    const box = h("div", { class: "notice error", role: "alert" });
    show(h("div", {}, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← All schedules")),
      h("h1", {}, "Schedule"), box));
    failed(err, box);
    return;
  }
  if (token !== viewToken) return;

  const status = h("div", { class: "notice", role: "status", "aria-live": "polite", id: "action-status" });
  const alertBox = h("div", { class: "notice", role: "alert", id: "action-error" });
  const run = h("button", { type: "button" }, "Run now");
  const pauseOrResume = schedule.status === "PAUSED"
    ? h("button", { type: "button", class: "secondary" }, "Resume")
    : h("button", { type: "button", class: "secondary" }, "Pause…");
  const edit = h("a", { class: "button secondary", href: `#/schedules/${encodeURIComponent(id)}/edit` }, "Edit");
  const del = h("button", { type: "button", class: "danger" }, "Delete…");
  const spendHolder = h("div", {}, h("section", { class: "panel" }, h("h2", {}, "Spend"), h("p", { class: "muted" }, "Loading…")));
  const drawSpend = () => loadSpend([schedule], new RunHistory())
    .then((spend) => {
      if (token === viewToken) spendHolder.replaceChildren(spendPanel(scheduleSpend(spend, schedule.id), [schedule], "Spend"));
    })
    .catch((err) => { if (token === viewToken) failed(err, alertBox); });
  const runs = historySection(schedule, () => token === viewToken, alertBox, drawSpend);

  async function act(button, work) {
    setMessage(alertBox, "", "");
    button.disabled = true;
    try {
      await work();
    } catch (err) {
      failed(err, alertBox);
    } finally {
      button.disabled = false;
    }
  }

  run.addEventListener("click", () => act(run, async () => {
    const started = await api("POST", schedulePath(id, "/trigger"));
    setMessage(status, "info", `Run started (${started.run_id}). The history refreshes until it finishes.`);
    runs.expect(started.run_id);
  }));
  pauseOrResume.addEventListener("click", () => act(pauseOrResume, async () => {
    if (schedule.status === "PAUSED") {
      await api("POST", schedulePath(id, "/resume"), {});
      go(`#/schedules/${id}`, { kind: "success", text: "Schedule resumed." });
      return;
    }
    const answer = await ask({
      title: `Pause “${schedule.name}”?`,
      text: "No fires run while it is paused; missed fires are not replayed on resume.",
      confirm: "Pause", reasonLabel: "Reason (optional)",
    });
    if (!answer) return;
    await api("POST", schedulePath(id, "/pause"), answer.reason ? { reason: answer.reason } : {});
    go(`#/schedules/${id}`, { kind: "success", text: "Schedule paused." });
  }));
  del.addEventListener("click", () => act(del, async () => {
    const answer = await ask({
      title: `Delete “${schedule.name}”?`,
      text: "The schedule and its run history are deleted. This cannot be undone.",
      confirm: "Delete", danger: true,
    });
    if (!answer) return;
    await api("DELETE", schedulePath(id));
    go("#/", { kind: "success", text: `Deleted “${schedule.name}”.` });
  }));

  const tz = schedule.timezone;
  const fires = [
    schedule.status === "PAUSED"
      ? h("p", { class: "notice info" }, "Paused: nothing fires until it is resumed. Once resumed, it fires at:")
      : null,
    preview && preview.next_run_times.length
      ? h("ol", { class: "fires" }, preview.next_run_times.map((t) => {
          const when = parseTime(t);
          return h("li", {}, formatIn(when, tz), h("span", { class: "cell-sub" }, `yours: ${formatLocal(when)}`));
        }))
      : h("p", { class: "muted" }, "No future fires."),
  ];
  const facts = [
    ["Status", [scheduleBadge(schedule), pauseDetail(schedule)]],
    ["Cron", [h("code", {}, schedule.cron_expression), preview ? h("span", { class: "cell-sub" }, preview.description) : null]],
    ["EventBridge", preview ? preview.eventbridge_expressions.map((e) => h("code", { class: "cell-sub" }, e)) : "—"],
    ["Time zone", tz],
    ["Next fire", nextFire(schedule)],
    ["Task", h("pre", {}, schedule.task_query || "")],
    ["Task context", Object.keys(schedule.task_context || {}).length
      ? h("pre", {}, JSON.stringify(schedule.task_context, null, 2)) : h("span", { class: "muted" }, "none")],
    ["Budget per run", money(schedule.max_budget_per_run_usd)],
    ["Timeout", `${schedule.timeout_seconds} s`],
    ["Overlap", schedule.overlap_policy === "allow" ? "allow (fires may overlap)" : "skip (a fire during a run is skipped)"],
    ["Retries", schedule.max_attempts_per_call > 1
      ? `up to ${schedule.max_attempts_per_call} attempts per model call, backoff from ${schedule.initial_backoff_seconds} s`
      : "none (one attempt per model call)"],
    ["Failure pause", schedule.pause_after_failures
      ? `after ${schedule.pause_after_failures} failed runs in a row (now ${schedule.consecutive_failures})`
      : "never"],
    ["Webhook", schedule.webhook || h("span", { class: "muted" }, "none")],
    ["Runs", `${schedule.total_runs} total · ${schedule.successful_runs} succeeded · ${schedule.failed_runs} failed`],
    ["Created", formatLocal(parseTime(schedule.created_at))],
    ["Updated", formatLocal(parseTime(schedule.updated_at))],
    ["Id", h("code", {}, schedule.id)],
  ];

  show(h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← All schedules")),
    h("h1", {}, schedule.name, " ", scheduleBadge(schedule)),
    schedule.description ? h("p", { class: "muted" }, schedule.description) : null,
    flashBox,
    h("div", { class: "toolbar", role: "group", "aria-label": "Actions" }, run, pauseOrResume, edit, del),
    status, alertBox,
    h("div", { class: "grid" },
      h("section", { class: "panel", "aria-label": "Details" }, h("h2", {}, "Details"),
        h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
      h("div", { class: "detail-side" },
        h("section", { class: "panel", "aria-label": "Next fires" }, h("h2", {}, "Next fires"), fires),
        spendHolder)),
    runs.element));

  runs.load(1);
  drawSpend();
}

function historySection(schedule, alive, alertBox, onSettled) {
  const holder = h("div", {}, h("p", { class: "muted" }, "Loading runs…"));
  const live = h("p", { class: "muted small", role: "status", "aria-live": "polite" });
  const element = h("section", { class: "panel", "aria-label": "Run history" },
    h("h2", {}, "Run history"), live, holder);
  let page = 1;
  let expected = null; // a run started here that has not finished yet
  let timer = null;
  let since = 0;
  let wasPolling = false;

  function schedulePoll(needed) {
    clearTimeout(timer);
    if (!needed || !alive() || Date.now() - since > POLL_LIMIT_MS) {
      live.textContent = "";
      return;
    }
    live.textContent = "A run is in progress; refreshing every second.";
    timer = setTimeout(() => load(page, true), POLL_MS);
  }

  async function load(n, quiet = false) {
    page = n;
    let body;
    try {
      body = await api("GET", schedulePath(schedule.id, `/runs?page=${n}&page_size=${HISTORY_PAGE}`));
    } catch (err) {
      if (alive()) failed(err, alertBox);
      return;
    }
    if (!alive()) return;
    const running = body.runs.some((r) => r.status === "RUNNING" || r.status === "PENDING");
    if (expected) {
      const mine = body.runs.find((r) => r.workflow_id === expected);
      if (mine && mine.status !== "RUNNING" && mine.status !== "PENDING") expected = null;
    }
    draw(body, quiet);
    const polling = running || Boolean(expected && page === 1);
    if (wasPolling && !polling) onSettled();
    wasPolling = polling;
    schedulePoll(polling);
  }

  function draw(body, quiet) {
    const pages = Math.max(1, Math.ceil(body.total_count / HISTORY_PAGE));
    if (!body.runs.length) {
      holder.replaceChildren(h("p", { class: "muted", "data-testid": "no-runs" },
        page === 1 ? "No runs yet. Fires and manual runs appear here, newest first." : "No runs on this page."));
      return;
    }
    const budget = money(schedule.max_budget_per_run_usd);
    const rows = body.runs.map((r) => {
      const scheduled = parseTime(r.triggered_at);
      const outcome = r.status === "SKIPPED"
        ? `Skipped: ${r.error_message || "no reason recorded"}`
        : r.error_message || excerpt(r.result);
      return h("tr", { "data-run-id": r.workflow_id, "data-status": r.status },
        h("td", {}, runBadge(r.status), h("span", { class: "cell-sub" }, r.trigger === "manual" ? "run now" : "scheduled")),
        h("td", { class: "nowrap" }, formatIn(scheduled, schedule.timezone), h("span", { class: "cell-sub" }, `yours: ${formatLocal(scheduled)}`)),
        h("td", { class: "nowrap" }, r.started_at ? formatLocal(parseTime(r.started_at)) : "—",
          h("span", { class: "cell-sub" }, r.completed_at ? `finished ${formatLocal(parseTime(r.completed_at))}` : "not finished")),
        h("td", { class: "num" }, duration(r.duration_ms)),
        h("td", { class: "num" }, String(r.total_tokens ?? 0)),
        h("td", { class: "num nowrap", "data-testid": "cost" }, money(r.total_cost_usd), h("span", { class: "cell-sub" }, `of ${budget} budget`)),
        h("td", { class: "excerpt" }, outcome, r.model_used ? h("span", { class: "cell-sub" }, `${r.provider || ""} ${r.model_used}`.trim()) : null));
    });
    const prev = h("button", { type: "button", class: "secondary", disabled: page <= 1 }, "Newer");
    const next = h("button", { type: "button", class: "secondary", disabled: page >= pages }, "Older");
    prev.addEventListener("click", () => load(page - 1));
    next.addEventListener("click", () => load(page + 1));
    const table = h("table", { id: "runs" },
      h("caption", { class: "visually-hidden" }, `Runs of ${schedule.name}, newest first`),
      h("thead", {}, h("tr", {}, ["Status", "Scheduled", "Started / finished", "Duration", "Tokens", "Cost", "Result or error"].map((t, i) =>
        h("th", { scope: "col", class: i >= 3 && i <= 5 ? "num" : null }, t)))),
      h("tbody", {}, rows));
    const focusInside = holder.contains(document.activeElement) ? document.activeElement.textContent : null;
    holder.replaceChildren(
      h("div", { class: "table-wrap", role: "region", "aria-label": "Run history table", tabindex: "0" }, table),
      h("div", { class: "pager" }, prev, h("span", {}, `Page ${page} of ${pages} · ${body.total_count} runs`), next));
    if (!quiet && focusInside) {
      const again = [prev, next].find((b) => b.textContent === focusInside && !b.disabled);
      if (again) again.focus();
    }
  }

  return {
    element,
    load,
    expect(runId) {
      expected = runId;
      since = Date.now();
      if (page !== 1) load(1);
      else schedulePoll(true);
    },
  };
}

// --- create / edit form ----------------------------------------------------------------

const TIMEZONES = (() => {
  try { return ["UTC", ...Intl.supportedValuesOf("timeZone").filter((z) => z !== "UTC")]; } catch { return ["UTC"]; }
})();

async function formView(id) {
  const editing = Boolean(id);
  let original = null;
  const token = viewToken;
  show(h("div", {}, h("h1", {}, editing ? "Edit schedule" : "New schedule"), h("p", { class: "muted", role: "status" }, "Loading…")));
  if (editing) {
    try {
      original = await api("GET", schedulePath(id));
    } catch (err) {
      if (token !== viewToken) return;
      const box = h("div", { class: "notice error", role: "alert" });
      show(h("div", {}, h("h1", {}, "Edit schedule"), box));
      failed(err, box);
      return;
    }
    if (token !== viewToken) return;
  }
  const o = original || {};
  const input = (name, props) => h("input", { name, id: `f-${name}`, autocomplete: "off", ...props });
  const name = input("name", { type: "text", maxlength: "255", required: true, "aria-required": "true", value: o.name || "" });
  const description = input("description", { type: "text", value: o.description || "" });
  const cron = input("cron_expression", { type: "text", required: true, "aria-required": "true", spellcheck: "false", value: o.cron_expression || "0 9 * * 1-5" });
  const zoneList = h("datalist", { id: "tz-list" }, TIMEZONES.map((z) => h("option", { value: z })));
  const timezone = input("timezone", { type: "text", list: "tz-list", spellcheck: "false", value: o.timezone || VIEWER_TZ || "UTC" });
  const query = h("textarea", { name: "task_query", id: "f-task_query", required: true, "aria-required": "true", value: o.task_query || "" });
  const context = h("textarea", { name: "task_context", id: "f-task_context", class: "code", spellcheck: "false",
    value: o.task_context && Object.keys(o.task_context).length ? JSON.stringify(o.task_context, null, 2) : "" });
  const budget = input("max_budget_per_run_usd", { type: "number", min: "0", step: "any", inputmode: "decimal",
    value: o.max_budget_per_run_usd ?? "" });
  const timeout = input("timeout_seconds", { type: "number", min: "1", step: "1", inputmode: "numeric", value: o.timeout_seconds ?? "" });
  const overlap = h("select", { name: "overlap_policy", id: "f-overlap_policy" },
    h("option", { value: "skip" }, "skip: a fire while the previous run runs is skipped"),
    h("option", { value: "allow" }, "allow: runs may overlap"));
  overlap.value = o.overlap_policy || "skip";
  const webhook = input("webhook", { type: "url", placeholder: "https://…", value: o.webhook || "" });
  const attempts = input("max_attempts_per_call", { type: "number", min: "1", max: "10", step: "1", inputmode: "numeric",
    value: o.max_attempts_per_call ?? "" });
  const backoff = input("initial_backoff_seconds", { type: "number", min: "0.1", max: "60", step: "any", inputmode: "decimal",
    value: o.initial_backoff_seconds ?? "" });
  const pauseAfter = input("pause_after_failures", { type: "number", min: "0", max: "1000", step: "1", inputmode: "numeric",
    value: o.pause_after_failures ?? "" });
  const error = h("div", { class: "notice error", role: "alert", id: "form-error" });
  const submit = h("button", { type: "submit" }, editing ? "Save changes" : "Create schedule");
  const cancel = h("a", { class: "button secondary", href: editing ? `#/schedules/${encodeURIComponent(id)}` : "#/" }, "Cancel");
  const previewBody = h("div", { class: "preview-body", id: "preview-body" });
  const preview = h("section", { class: "panel preview", "aria-label": "Preview", "aria-live": "polite", id: "preview" },
    h("h2", {}, "Preview"), previewBody);

  const form = h("form", { class: "panel", novalidate: true, "aria-label": editing ? "Edit schedule" : "New schedule" },
    field("Name", name),
    field("Description", description),
    field("Cron expression", cron, "Five fields: minute hour day-of-month month day-of-week, e.g. 0 9 * * 1-5 (09:00 on weekdays); or @daily, @hourly."),
    field("Time zone", timezone, "An IANA name such as Asia/Shanghai or Europe/Paris. Fire times follow its daylight-saving rules."),
    zoneList,
    field("Task", query, "What the agent is asked at every fire (the user message)."),
    field("Task context (JSON object)", context, editing ? "Optional. Empty the box to clear it." : "Optional, e.g. {\"report_format\": \"markdown\"}."),
    h("div", { class: "row2" },
      field("Budget per run (USD)", budget, "Empty: the deployment's default. A run never spends more."),
      field("Timeout (seconds)", timeout, "Empty: the deployment's default.")),
    field("When a fire comes while a run is still running", overlap),
    field("Webhook (optional)", webhook, "An https:// URL that receives every finished run and system pause as signed JSON."),
    h("div", { class: "row2" },
      field("Attempts per model call", attempts, "Retries of rate limits and provider outages, within the run's deadline and budget. Empty: the default."),
      field("First backoff (seconds)", backoff, "Doubled per retry, plus jitter. Empty: the default.")),
    field("Pause after failed runs in a row", pauseAfter, "Failed or timed-out runs; 0 never pauses. Empty: the default."),
    error,
    h("div", { class: "toolbar" }, submit, cancel));

  // Live preview: the API's own cron engine, as you type.
  let previewSeq = 0;
  let previewTimer = null;
  async function refreshPreview() {
    if (token !== viewToken) return;
    const seq = ++previewSeq;
    const expression = cron.value.trim();
    if (!expression) {
      previewBody.replaceChildren(h("p", { class: "muted" }, "Type a cron expression to see its next fires."));
      return;
    }
    preview.setAttribute("aria-busy", "true");
    const tz = timezone.value.trim() || "UTC";
    try {
      const request = { cron_expression: expression, timezone: tz, count: 5 };
      // The forecast's worst case at the budget being typed (else the deployment's default).
      const perRun = Number(budget.value);
      if (budget.value.trim() && Number.isFinite(perRun) && perRun > 0) request.max_budget_per_run_usd = perRun;
      const p = await api("POST", "api/v1/schedules/preview", request);
      if (seq !== previewSeq) return;
      cron.removeAttribute("aria-invalid");
      previewBody.replaceChildren(...renderPreview(p, tz));
    } catch (err) {
      if (seq !== previewSeq) return;
      if (err instanceof ApiError && err.status === 401) { failed(err); return; }
      cron.setAttribute("aria-invalid", "true");
      previewBody.replaceChildren(h("p", { class: "notice error", "data-testid": "preview-error" }, err.message));
    } finally {
      if (seq === previewSeq) preview.removeAttribute("aria-busy");
    }
  }
  const queuePreview = () => { clearTimeout(previewTimer); previewTimer = setTimeout(refreshPreview, PREVIEW_DELAY_MS); };
  cron.addEventListener("input", queuePreview);
  timezone.addEventListener("input", queuePreview);
  timezone.addEventListener("change", queuePreview);
  budget.addEventListener("input", queuePreview);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setMessage(error, "error", "");
    let body;
    try {
      body = formBody({ name, description, cron, timezone, query, context, budget, timeout, overlap, webhook,
        attempts, backoff, pauseAfter }, original);
    } catch (err) {
      setMessage(error, "error", err.message);
      if (err.field) { err.field.setAttribute("aria-invalid", "true"); err.field.focus(); }
      return;
    }
    submit.disabled = true;
    try {
      if (editing) {
        const done = await api("PUT", schedulePath(id), body);
        go(`#/schedules/${id}`, savedNotice("Schedule updated.", done));
      } else {
        const done = await api("POST", "api/v1/schedules", body);
        // The webhook signing secret is shown this once: the API never returns it again.
        const secret = done.webhook_secret ? ` Webhook signing secret (shown once, keep it): ${done.webhook_secret}` : "";
        const notice = savedNotice("Schedule created.", done);
        go(`#/schedules/${done.schedule_id}`, { ...notice, text: `${notice.text}${secret}` });
      }
    } catch (err) {
      failed(err, error);
    } finally {
      submit.disabled = false;
    }
  });

  show(h("div", {},
    editing ? h("p", { class: "crumbs" }, h("a", { href: `#/schedules/${encodeURIComponent(id)}` }, `← ${o.name}`)) : h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← All schedules")),
    h("h1", {}, editing ? `Edit “${o.name}”` : "New schedule"),
    h("div", { class: "grid" }, form, h("div", {}, preview))));
  refreshPreview();
}

// A save's notice; the API's warnings (a 30-day worst case above a monthly cap) make it one.
function savedNotice(text, done) {
  const warnings = Array.isArray(done.warnings) ? done.warnings.filter((w) => typeof w === "string") : [];
  const said = `${text} ${nextText(done.next_run_at)}`;
  return warnings.length
    ? { kind: "warning", text: `${said} Warning: ${warnings.join(" ")}` }
    : { kind: "success", text: said };
}

function nextText(nextRunAt) {
  const when = parseTime(nextRunAt);
  return when ? `Next fire: ${formatLocal(when)}.` : "It has no future fire.";
}

function renderPreview(p, tz) {
  const parts = [
    h("p", { "data-testid": "preview-description" }, h("strong", {}, p.description)),
    h("h3", {}, `Next ${p.next_run_times.length} fires`),
    p.next_run_times.length
      ? h("ol", { class: "fires", "data-testid": "preview-fires" }, p.next_run_times.map((t) => {
          const when = parseTime(t);
          return h("li", {}, formatIn(when, tz), h("span", { class: "cell-sub" }, `yours: ${formatLocal(when)}`));
        }))
      : h("p", { class: "muted" }, "It never fires."),
    h("h3", {}, "EventBridge Scheduler"),
    h("p", {}, p.eventbridge_expressions.map((e, i) => [i ? h("br") : null, h("code", {}, e)])),
    h("p", { class: "muted small" }, `Shortest gap between two fires: ${minutesText(p.min_interval_minutes)}.`),
  ];
  // The 30-day forecast, when the deployment's preview offers one.
  const forecast = p.forecast_30d || p.forecast;
  if (forecast && typeof forecast === "object") {
    const bits = [];
    if (forecast.fires !== undefined) bits.push(`${forecast.fires} fires`);
    if (forecast.max_cost_usd !== undefined) bits.push(`at most ${money(forecast.max_cost_usd)}`);
    if (forecast.expected_cost_usd !== undefined && forecast.expected_cost_usd !== null) bits.push(`about ${money(forecast.expected_cost_usd)} expected`);
    parts.push(h("h3", {}, "Next 30 days"), h("p", { "data-testid": "preview-forecast" }, bits.join(" · ") || "—"));
  }
  return parts;
}

class FormError extends Error {
  constructor(message, fieldEl) { super(message); this.field = fieldEl; }
}

// The request body: create sends what is filled in; edit sends the fields that changed.
function formBody(f, original) {
  const body = {
    name: f.name.value,
    description: f.description.value,
    cron_expression: f.cron.value.trim(),
    timezone: f.timezone.value.trim(),
    task_query: f.query.value,
    overlap_policy: f.overlap.value,
  };
  const contextText = f.context.value.trim();
  if (contextText) {
    let parsed;
    try { parsed = JSON.parse(contextText); } catch (err) {
      throw new FormError(`Task context is not valid JSON: ${err.message}`, f.context);
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new FormError("Task context must be a JSON object, e.g. {\"key\": \"value\"}.", f.context);
    }
    body.task_context = parsed;
  }
  for (const [key, el, integer] of [
    ["max_budget_per_run_usd", f.budget, false], ["timeout_seconds", f.timeout, true],
    ["max_attempts_per_call", f.attempts, true], ["initial_backoff_seconds", f.backoff, false],
    ["pause_after_failures", f.pauseAfter, true],
  ]) {
    if (el.validity.badInput) throw new FormError(`${el.labels[0].textContent} must be a number.`, el);
    if (el.value === "") continue;
    const n = Number(el.value);
    body[key] = integer && Number.isInteger(n) ? n : integer ? el.value : n;
  }
  const hook = f.webhook.value.trim();
  if (hook) body.webhook = hook;
  if (!original) {
    if (!body.description) delete body.description;
    if (!body.timezone) delete body.timezone;
    return body;
  }
  // Edit: only what changed (the API treats every key as a change).
  const changed = {};
  for (const [key, value] of Object.entries(body)) {
    if (JSON.stringify(value) !== JSON.stringify(original[key])) changed[key] = value;
  }
  const hadContext = original.task_context && Object.keys(original.task_context).length;
  if (!contextText && hadContext) changed.clear_task_context = true;
  if (!hook && original.webhook) changed.webhook = null;
  return changed;
}

// --------------------------------------------------------------------------------------
// Routing: #/ · #/new · #/schedules/<id> · #/schedules/<id>/edit

function route() {
  viewToken += 1; // the previous view's pending work and timers stop
  sessionBar();
  if (!session.key) { signInView(); return; }
  const hash = location.hash || "#/";
  let m;
  if (hash === "#/new") formView(null);
  else if ((m = hash.match(/^#\/schedules\/([^/]+)\/edit$/))) formView(decodeURIComponent(m[1]));
  else if ((m = hash.match(/^#\/schedules\/([^/]+)$/))) detailView(decodeURIComponent(m[1]));
  else overviewView();
}

document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
route();
