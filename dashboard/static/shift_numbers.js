// @ts-check
// The duty screen's "shift in numbers" panel (index.html): the current shift's answer times
// against the telecare standard (alarm calls acknowledged within 60 s and 180 s), median and
// p90 times, open alerts and escalations, and who answered. A module of its own, loaded by
// its own <script> line like overdue.js: it follows the page's login through the shared
// session, refreshes every 30 s and soon after the alert list changes (a new, acknowledged
// or resolved alert) or the live feed is back; it asks nothing while the feed is down (the
// server may be away), and never touches the alert screen. The site is the user's own, or
// the page's `?site=` for an administrator.

import { api, AuthError, loadSession } from "./api.js";
import { duration, percent, targetText, verdict } from "./answer_format.js";
import { $, el } from "./dom.js";
import { t } from "./i18n.js";
import { followAppView } from "./panel.js";

/** @typedef {import("./answer_format.js").AnswerTimes} AnswerTimes */

const REFRESH_MS = 30000;
const AFTER_CHANGE_MS = 1500;  // let the acknowledgement reach the database first
/** @type {ReturnType<typeof setTimeout> | null} */
let soon = null;
let lastSignature = "";

function site() {
  const session = loadSession();
  return new URLSearchParams(location.search).get("site") || (session && session.site_id) || "";
}

/**
 * One figure of the panel.
 * @param {string} key the metric's value, for tests and styling
 * @param {string} label
 * @param {string} value
 * @param {{text: string, className: string}} [note]
 */
function tile(key, label, value, note) {
  return el("div", { className: "shift-tile", dataset: { metric: key } },
    el("dt", {}, label),
    el("dd", {}, el("span", { className: "shift-value" }, value),
      note ? el("span", { className: `shift-verdict ${note.className}` }, note.text) : ""));
}

/**
 * A share against its target: the share large, the verdict and the target beside it.
 * @param {string} key @param {string} label
 * @param {import("./answer_format.js").Share} share
 * @param {import("./answer_format.js").Labels} labels
 */
function shareTile(key, label, share, labels) {
  const v = verdict(share, labels);
  return tile(key, label, percent(share.share),
    { text: `${v.text} · ${targetText(share, labels)}`, className: v.className });
}

/** @param {AnswerTimes} data */
function paint(data) {
  const { labels, alarm_calls: calls, all } = data;
  const m = labels.metrics;
  $("shift-heading-text").textContent = labels.texts.panel_title;
  const span = labels.texts[data.window === "shift" ? "shift" : "last_12h"];
  $("shift-period").textContent = t("{span}: {start} – {end}",
    { span, start: data.start_local, end: data.end_local.slice(11) });
  $("shift-tiles").replaceChildren(
    shareTile("within_60", `${m.within_60} · ${labels.groups.alarm_calls}`, calls.within_60, labels),
    shareTile("within_180", `${m.within_180} · ${labels.groups.alarm_calls}`, calls.within_180, labels),
    tile("opened", m.opened, String(all.opened)),
    tile("ack", t("{median} / p90", { median: m.ack_median_s }),
      `${duration(all.ack_median_s)} / ${duration(all.ack_p90_s)}`),
    tile("resolve", t("{median} / p90", { median: m.resolve_median_s }),
      `${duration(all.resolve_median_s)} / ${duration(all.resolve_p90_s)}`),
    tile("open_now", labels.texts.open_now, String(data.open_now)),
    tile("escalated", m.escalated, String(all.escalated)));
  $("shift-workers").replaceChildren(...data.by_worker.map((w) => el("li", {},
    el("span", { className: "shift-worker", translate: false }, w.full_name || w.username),
    el("span", {}, `${w.acknowledged} · ${percent(w.within_60.share)} · ${duration(w.ack_median_s)}`))));
}

/** Whether the page's live feed is down (the server may be away: do not ask it then). */
function feedDown() {
  return $("feed-status").classList.contains("down");
}

async function refresh() {
  const where = site();
  if (!loadSession() || $("app-view").hidden || !where || feedDown()) return;
  try {
    paint(await api(`/sites/${encodeURIComponent(where)}/answer-times/shift`));
    $("shift-message").textContent = "";
  } catch (err) {
    if (err instanceof AuthError) return;  // the page itself goes back to the login form
    $("shift-message").textContent = /** @type {Error} */ (err).message;
  }
}

function refreshSoon() {
  if (soon !== null) clearTimeout(soon);
  soon = setTimeout(() => { soon = null; refresh(); }, AFTER_CHANGE_MS);
}

/** The alert list's ids and states: refresh when they change, not on every age tick. */
function watchAlerts() {
  const signature = [...document.querySelectorAll("#alert-groups [data-alert-id]")]
    .map((card) => `${/** @type {HTMLElement} */ (card).dataset.alertId}:${card.className}`)
    .join(",");
  if (signature === lastSignature) return;
  lastSignature = signature;
  refreshSoon();
}

let wasDown = false;
/** Catch up when the feed comes back after being down. */
function watchFeed() {
  const down = feedDown();
  if (wasDown && !down) refreshSoon();
  wasDown = down;
}

followAppView({
  panel: "shift-panel",
  allowed: () => {
    const session = loadSession();
    return session !== null && session.role !== "family" && site() !== "";
  },
  refresh,
  clear: () => {
    $("shift-tiles").replaceChildren();
    $("shift-workers").replaceChildren();
  },
  everyMs: REFRESH_MS,
});
new MutationObserver(watchAlerts).observe($("alert-groups"),
  { childList: true, subtree: true, attributes: true, attributeFilter: ["class", "data-alert-id"] });
new MutationObserver(watchFeed).observe($("feed-status"), { attributes: true, attributeFilter: ["class"] });
