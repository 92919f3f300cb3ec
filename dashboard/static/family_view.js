// @ts-check
// The family view (/family, templates/family_view.html): one card per linked relative, on a
// phone. Every sentence about the relative ("In bed since 22:14", "about usual", "All clear
// at 10:42: ...") is written
// by the server (GET /api/v1/family/residents/{id}/summary, dashboard/family); this module
// places it, formats numbers and dates, and keeps the cards current: it reloads them when
// the live feed (common.js, live.js, stream.js) reports a change to their alerts, on every
// reconnect, and once a minute for the bed's state.

import { api, ApiError, AuthError, loadSession } from "./api.js";
import { showWeekChart } from "./charts.js";
import { leaveApp, noteStreamStatus, paintFeed, showApp, showLogin, wireLogin } from "./common.js";
import { $, el } from "./dom.js";
import { t } from "./i18n.js";
import { siteClock, siteTime, siteWhen, weekday } from "./time.js";
import { channelLabel, typeLabel, vocabulary } from "./vocabulary.js";

/** @typedef {import("./live.js").FeedStatus} FeedStatus */
/**
 * @typedef {object} Compared
 * @property {number | null} value
 * @property {number | null} usual
 * @property {string} kind
 * @property {string} text
 */
/**
 * @typedef {object} FamilyAlert
 * @property {number} id
 * @property {string} type
 * @property {string} status
 * @property {string} opened_at
 * @property {string} summary
 * @property {{at: string, event: string}[]} history
 * @property {string | null} all_clear
 */
/**
 * @typedef {object} Summary
 * @property {{id: number, full_name: string, timezone: string,
 *   state: {kind: string, text: string}}} resident
 * @property {{time_in_bed_s: number | null, night_exits: number | null,
 *   resting_hr: Compared, breathing: Compared}} last_night
 * @property {{day: string, time_in_bed_s: number | null, night_exits: number | null,
 *   resting_hr: number | null, alerts: number}[]} days
 * @property {FamilyAlert[]} alerts
 */
/** @typedef {import("./common.js").PageState & {summaries: Map<number, Summary>}} FamilyState */

const REFRESH_MS = 60000;   // the bed's state changes without an alert: poll it this often
const RELOAD_DELAY_MS = 300; // several feed events in a row cause one reload

/** @type {FamilyState} */
const state = {
  session: null, me: null, live: null, residents: new Map(), cards: new Map(), downSince: 0,
  tickTimer: null, summaries: new Map(),
};
/** @type {ReturnType<typeof setTimeout> | null} */
let reloadTimer = null;

// --- formatting ----------------------------------------------------------------------

/** "7 h 51 min". @param {number | null} seconds @returns {string} */
function duration(seconds) {
  if (seconds === null) return t("Not recorded");
  const minutes = Math.round(seconds / 60);
  const hours = Math.floor(minutes / 60);
  return hours ? t("{hours} h {minutes} min", { hours, minutes: minutes % 60 })
    : t("{minutes} min", { minutes });
}

/** "53 /min: lower than usual (usual 62)" (`text`: the server's words). @param {Compared} c */
function compared(c) {
  if (c.value === null) return t("Not recorded");
  const value = Math.round(c.value);
  return c.usual === null ? t("{value} /min: {comparison}", { value, comparison: c.text })
    : t("{value} /min: {comparison} (usual {usual})",
      { value, comparison: c.text, usual: Math.round(c.usual) });
}

// --- cards ---------------------------------------------------------------------------

/** @param {Element} root @param {string} selector @returns {HTMLElement} */
function part(root, selector) {
  const node = root.querySelector(selector);
  if (!(node instanceof HTMLElement)) throw new Error(`card part ${selector} is missing`);
  return node;
}

/** @param {number} id @returns {HTMLElement} */
function cardFor(id) {
  const existing = document.getElementById(`resident-${id}`);
  if (existing) return existing;
  const template = /** @type {HTMLTemplateElement} */ ($("resident-card"));
  const card = /** @type {HTMLElement} */ (template.content.firstElementChild?.cloneNode(true));
  card.id = `resident-${id}`;
  $("family-list").append(card);
  return card;
}

/** @param {FamilyAlert} alert @param {string} zone @returns {HTMLLIElement} */
function alertItem(alert, zone) {
  const steps = alert.history.map((h) => el("li", {}, `${siteClock(h.at, zone)} ${h.event}`));
  return el("li", { className: `family-alert status-${alert.status}` },
    el("p", { className: "family-alert-title" },
      `${typeLabel(alert.type)} · ${siteTime(alert.opened_at, zone)}`),
    el("p", { className: "family-alert-summary" }, alert.summary),
    steps.length ? el("ol", { className: "family-steps" }, ...steps) : null,
    alert.all_clear ? el("p", { className: "family-all-clear" }, alert.all_clear) : null);
}

/** @param {Summary} s */
function paintCard(s) {
  const zone = s.resident.timezone;
  const card = cardFor(s.resident.id);
  part(card, ".family-name").textContent = s.resident.full_name;
  const stateLine = part(card, ".family-state");
  stateLine.textContent = s.resident.state.text;
  stateLine.dataset.kind = s.resident.state.kind;
  part(card, ".family-alert-list").replaceChildren(...s.alerts.map((a) => alertItem(a, zone)));
  part(card, ".family-no-alerts").hidden = s.alerts.length > 0;
  const night = s.last_night;
  part(card, ".night-in-bed").textContent = duration(night.time_in_bed_s);
  part(card, ".night-exits").textContent =
    night.night_exits === null ? t("Not recorded") : String(night.night_exits);
  part(card, ".night-hr").textContent = compared(night.resting_hr);
  part(card, ".night-rr").textContent = compared(night.breathing);
  part(card, ".week-rows").replaceChildren(...s.days.map((d) => el("tr", {},
    el("th", { scope: "row" }, `${weekday(d.day)} `,
      el("span", { className: "day-date" }, d.day)), el("td", {}, duration(d.time_in_bed_s)),
    el("td", {}, d.night_exits === null ? "–" : String(d.night_exits)),
    el("td", { className: d.alerts ? "week-alerts" : "" },
      d.alerts ? String(d.alerts) : t("None")))));
  showWeekChart(part(card, ".family-week-chart"), s.days);
}

/**
 * Recent visits (GET /residents/{id}/visits): shown when the server has them; a 404 (no
 * visits yet on this server) shows nothing.
 * @param {number} id @param {string} zone
 */
async function loadVisits(id, zone) {
  const section = part(cardFor(id), ".family-visits");
  /** @type {{started_at: string, ended_at: string | null, summary: string}[] | null} */
  let visits = null;
  try {
    visits = await api(`/residents/${id}/visits?limit=5`);
  } catch (err) {
    if (err instanceof AuthError) logout(err.message);
    section.hidden = true;
    return;
  }
  const list = Array.isArray(visits) ? visits : [];
  section.hidden = list.length === 0;
  part(section, ".family-visit-list").replaceChildren(...list.map((v) => el("li", {},
    v.ended_at ? t("{start}–{end}: {summary}", { start: siteTime(v.started_at, zone),
      end: siteWhen(v.ended_at, zone, v.started_at), summary: v.summary })
      : t("{start} (ongoing): {summary}", { start: siteTime(v.started_at, zone),
        summary: v.summary }))));
}

async function loadAll() {
  try {
    /** @type {{id: number}[]} */
    const residents = await api("/family/residents");
    $("family-empty").hidden = residents.length > 0;
    const ids = new Set(residents.map((r) => r.id));
    for (const card of [...$("family-list").children]) {
      if (!ids.has(Number(card.id.replace("resident-", "")))) card.remove();
    }
    for (const { id } of residents) {
      /** @type {Summary} */
      const summary = await api(`/family/residents/${id}/summary`);
      state.summaries.set(id, summary);
      paintCard(summary);
      loadVisits(id, summary.resident.timezone);
    }
    $("alerts-message").textContent = "";
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    const text = err instanceof ApiError ? err.message : String(err.message || err);
    $("alerts-message").textContent = t("Could not load the latest news: {reason}",
      { reason: text });
  }
  return undefined;
}

/** Many feed events in a row: one reload shortly after. */
function reloadSoon() {
  if (reloadTimer !== null) clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => { reloadTimer = null; loadAll(); }, RELOAD_DELAY_MS);
}

/**
 * @typedef {object} Channel
 * @property {number} id
 * @property {string} kind
 * @property {string} target
 * @property {string} min_severity
 * @property {string | null} quiet_start
 * @property {string | null} quiet_end
 * @property {boolean} active
 */

/** Their own channels (GET /me/channels), each with a small form to change it. */
async function loadSettings() {
  /** @type {Channel[]} */
  let channels = [];
  try {
    channels = await api("/me/channels");
  } catch (err) {
    if (err instanceof AuthError) logout(err.message);
    return;
  }
  $("settings-empty").hidden = channels.length > 0;
  $("settings-list").replaceChildren(...channels.map(channelItem));
}

/** @param {Channel} c @returns {HTMLLIElement} */
function channelItem(c) {
  const id = `channel-${c.id}`;
  const severity = el("select", { id: `${id}-min`, name: "min_severity" },
    ...vocabulary.severities.map((s) => el("option",
      { value: s.value, selected: s.value === c.min_severity }, s.label)));
  // Text, not type=time: a time input shows 10:00 PM in some locales; the platform says 22:00.
  /** @param {string} suffix @param {string | null} value */
  const hhmm = (suffix, value) => el("input", { id: `${id}-${suffix}`, type: "text",
    inputMode: "numeric", pattern: "[0-2][0-9]:[0-5][0-9]", placeholder: t("HH:MM"),
    autocomplete: "off", value: value || "" });
  const from = hhmm("from", c.quiet_start);
  const to = hhmm("to", c.quiet_end);
  const message = el("p", { className: "notify-message", role: "status" });
  const form = el("form", { className: "family-channel-form", noValidate: true },
    el("label", { htmlFor: severity.id }, t("Tell me about alerts from")), severity,
    el("label", { htmlFor: from.id }, t("Quiet hours from")), from,
    el("label", { htmlFor: to.id }, t("to")), to,
    el("button", { type: "submit", className: "secondary" }, t("Save")), message);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveChannel(c.id, severity.value, from.value, to.value, message);
  });
  const test = el("button", { type: "button", className: "secondary channel-test" },
    t("Send test"));
  test.addEventListener("click", () => sendTest(c.id, message));
  return el("li", { className: "family-channel" },
    el("strong", {}, channelName(c.kind)), " ",
    c.kind === "webpush" ? "" : el("span", { translate: false }, c.target),
    c.active ? "" : " · ", c.active ? "" : t("paused"), " ", test, form);
}

/** The family's word for a kind of channel. @param {string} kind @returns {string} */
function channelName(kind) {
  if (kind === "webpush") return t("Notifications on a phone");
  if (kind === "webhook") return t("Web address");
  return channelLabel(kind);  // e-mail and the rest: the vocabulary's word
}

/**
 * POST /me/channels/{id}/test: a test message through the channel now, with the platform's
 * own sender; the answer says whether it arrived.
 * @param {number} id @param {HTMLElement} message
 */
async function sendTest(id, message) {
  message.textContent = t("Sending…");
  try {
    const answer = await api(`/me/channels/${id}/test`, { method: "POST" });
    message.textContent = answer.sent ? t("The test message was delivered.")
      : t("Not delivered: {reason}", { reason: answer.detail });
  } catch (err) {
    if (err instanceof AuthError) logout(err.message);
    else message.textContent = err.message;
  }
}

/**
 * PATCH /me/channels/{id}: minimum severity and quiet hours (both times, or neither).
 * @param {number} id @param {string} minSeverity @param {string} from @param {string} to
 * @param {HTMLElement} message
 */
async function saveChannel(id, minSeverity, from, to, message) {
  if (Boolean(from) !== Boolean(to)) {
    message.textContent = t("Give both times, or clear both for no quiet hours.");
    return;
  }
  try {
    await api(`/me/channels/${id}`, { method: "PATCH", body: {
      min_severity: minSeverity, quiet_start: from || null, quiet_end: to || null } });
    message.textContent = t("Saved.");
  } catch (err) {
    if (err instanceof AuthError) logout(err.message);
    else message.textContent = err.message;
  }
}

// --- feed and session ------------------------------------------------------------------

/** @type {import("./common.js").FeedTexts} */
const FEED_TEXTS = {
  live: (_status, dbDown) => (dbDown ? t("Live · some news may be late") : t("Live")),
  lost: () => t("Connection lost: this page may be out of date. Retrying…"),
  dbDown: t("The care centre's system is partly unavailable; news may be late."),
};

/** @param {FeedStatus} status */
function onStatus(status) {
  if (!state.live) return;
  noteStreamStatus(state, status);
  paintFeed(status, state.downSince, FEED_TEXTS);
}

/** @param {import("./api.js").Session} session */
function showPage(session) {
  if (session.role !== "family") {
    window.location.assign("/");
    return;
  }
  // onChange: every (re)load and pushed alert of the feed; the cards follow it.
  showApp(state, session, { onChange: reloadSoon, onStatus, onFresh: () => {}, logout });
  state.tickTimer = setInterval(loadAll, REFRESH_MS);
  loadAll();
  loadSettings();
}

/** @param {string} [message] */
function logout(message = "") {
  if (reloadTimer !== null) clearTimeout(reloadTimer);
  $("family-list").replaceChildren();
  $("settings-list").replaceChildren();
  state.summaries.clear();
  leaveApp(state, message);
}

function init() {
  wireLogin(showPage);
  $("logout-button").addEventListener("click", () => logout(t("You have logged out.")));
  const session = loadSession();
  if (session) showPage(session);
  else showLogin();
}

init();
