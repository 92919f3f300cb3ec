// @ts-check
// Sent notifications (/admin/notifications): what each recipient of a site was sent
// (GET /api/v1/sites/{site}/notifications, from the platform's outbox), newest first, with
// recipient, channel, why, delivery status, times in the site's zone and the text itself.
// Channel, reason and status names come from the vocabulary; the page's own words are in
// templates/notifications.html.

import { api } from "./api.js";
import { guarded, say, startAdminPage } from "./admin.js";
import { $, $button, $input, el } from "./dom.js";
import { siteTime } from "./time.js";
import { channelLabel, deliveryLabel, notificationKindLabel } from "./vocabulary.js";

/**
 * One notification as the API returns it.
 * @typedef {object} SentNotification
 * @property {number} id
 * @property {string} created_at
 * @property {string | null} sent_at
 * @property {number | null} alert_id
 * @property {string} kind
 * @property {string} channel
 * @property {string} target
 * @property {string} recipient
 * @property {string | null} recipient_username
 * @property {string | null} recipient_role
 * @property {string} language
 * @property {string} status
 * @property {number} attempts
 * @property {string | null} last_error
 * @property {string} title
 * @property {string} body
 */

/**
 * @typedef {{site: string, site_timezone: string, notifications: SentNotification[],
 *            demo_inbox_url: string | null}} Sent
 */

const PAGE = 100;
/** @type {{oldest: number | null, shown: number}} */
const state = { oldest: null, shown: 0 };

/** @param {string} iso @param {string} zone */
function time(iso, zone) {
  return el("time", { dateTime: iso, title: zone, translate: false }, siteTime(iso, zone));
}

/** @param {SentNotification} n @param {string} zone @returns {HTMLTableRowElement} */
function row(n, zone) {
  const who = n.recipient_username ? `${n.recipient} (${n.recipient_username})` : n.recipient;
  // The message as it was sent, in its recipient's language: data, never translated.
  const text = el("details", { translate: false },
    el("summary", { className: "sent-title" }, n.title),
    el("pre", { className: "sent-body" }, n.body));
  return el("tr", { className: `delivery-${n.status}`, dataset: { id: String(n.id) } },
    el("td", {}, time(n.created_at, zone)),
    el("td", { className: "sent-recipient", translate: false }, who),
    el("td", { className: "sent-channel", title: n.target }, channelLabel(n.channel)),
    el("td", { className: "sent-kind" }, notificationKindLabel(n.kind)),
    el("td", { className: "sent-status", title: n.last_error || "" },
      deliveryLabel(n.status)),
    el("td", {}, n.sent_at ? time(n.sent_at, zone) : ""),
    el("td", {}, text));
}

function site() {
  return $input("sent-site").value.trim();
}

/** @param {boolean} more the next (older) page, else from the newest */
async function load(more) {
  say("");
  if (!site()) return;
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (more && state.oldest !== null) params.set("before", String(state.oldest));
  /** @type {Sent} */
  const sent = await api(`/sites/${encodeURIComponent(site())}/notifications?${params}`);
  const body = $("sent-rows");
  if (!more) {
    body.replaceChildren();
    state.shown = 0;
  }
  body.append(...sent.notifications.map((n) => row(n, sent.site_timezone)));
  state.shown += sent.notifications.length;
  const last = sent.notifications[sent.notifications.length - 1];
  state.oldest = last ? last.id : state.oldest;
  $("sent-zone").textContent = sent.site_timezone;
  const demo = /** @type {HTMLAnchorElement} */ ($("sent-demo-inbox"));
  demo.hidden = !sent.demo_inbox_url;
  if (sent.demo_inbox_url) demo.href = sent.demo_inbox_url;
  $("sent-count").textContent = String(state.shown);
  $("sent-empty").hidden = state.shown > 0;
  $button("sent-more").hidden = sent.notifications.length < PAGE;
}

startAdminPage(async (session) => {
  const fromPage = new URLSearchParams(location.search);
  $input("sent-site").value = fromPage.get("site") || session.site_id || "";
  $("sent-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => load(false));
  });
  $button("sent-more").addEventListener("click", () => guarded(() => load(true)));
  if (site()) await load(false);
});
