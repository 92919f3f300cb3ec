// @ts-check
// The duty screen's "District at a glance" panel (index.html): one tile per home (resident),
// coloured by its state — open alert, device offline, visit overdue, away, up, in bed, no
// data — with the count per state and filters by site and risk category. The state is
// decided by the server (GET /api/v1/homes/state, dashboard/homes.py, which also documents
// the precedence); the states' words come from the vocabulary.
//
// Kept current without a stream of its own: refreshed every REFRESH_MS, and within a second
// of any change in the alert list the page's live feed paints (a new, acknowledged or
// resolved alert changes a home's state at once) or of the feed coming back. Not asked while
// the feed is down (the server is unreachable or its database is away): the tiles keep their
// last state under the page's "connection lost" banner.

import { api, AuthError, loadSession } from "./api.js";
import { $, el } from "./dom.js";
import { t } from "./i18n.js";
import { followAppView } from "./panel.js";
import { siteTime } from "./time.js";
import { homeStates, riskTerms, severityLabel } from "./vocabulary.js";

/**
 * A home as GET /api/v1/homes/state returns it.
 * @typedef {object} Home
 * @property {number} resident_id
 * @property {string} full_name
 * @property {string} site_id
 * @property {string} site_timezone
 * @property {string | null} address
 * @property {string[]} risks
 * @property {string} state
 * @property {number} active_alerts
 * @property {string | null} top_severity
 * @property {number} devices_offline
 * @property {string | null} last_reading_at
 * @property {boolean} visit_overdue
 */
/** @typedef {{at: string, counts: Record<string, number>, homes: Home[]}} Homes */

const REFRESH_MS = 15000;
const WATCH_MS = 1000;

const STATE_LABELS = new Map(homeStates().map((t) => [t.value, t.label]));
const sitesSeen = new Set();
let alertSignature = "";
/** @type {ReturnType<typeof setInterval> | null} */
let watchTimer = null;
let loading = false;

/** The query of the chosen filters. @returns {string} */
function query() {
  const params = new URLSearchParams();
  const site = /** @type {HTMLSelectElement} */ ($("tiles-site")).value;
  const risk = /** @type {HTMLSelectElement} */ ($("tiles-risk")).value;
  if (site) params.set("site", site);
  if (risk) params.set("risk", risk);
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** @param {Home} home @returns {string} */
function detail(home) {
  if (home.state === "alert") {
    const loudest = home.top_severity ? severityLabel(home.top_severity) : "";
    const n = home.active_alerts === 1 ? t("1 alert")
      : t("{count} alerts", { count: home.active_alerts });
    return loudest ? `${n} · ${loudest}` : n;
  }
  if (home.state === "offline" && home.devices_offline) {
    return home.devices_offline === 1 ? t("1 device offline")
      : t("{count} devices offline", { count: home.devices_offline });
  }
  if (home.last_reading_at) {
    return t("bed {time}", { time: siteTime(home.last_reading_at, home.site_timezone) });
  }
  return "";
}

/** @param {Home} home @returns {HTMLLIElement} */
function tile(home) {
  const label = STATE_LABELS.get(home.state) || home.state;
  return el("li", {
    className: `tile tile--${home.state}`,
    dataset: { residentId: String(home.resident_id), state: home.state, site: home.site_id },
    title: [home.address, t("site {site}", { site: home.site_id })].filter(Boolean).join(" · "),
  },
  el("span", { className: "tile-name", translate: false }, home.full_name),
  el("span", { className: "tile-state" }, label),
  el("span", { className: "tile-detail" }, detail(home)));
}

/** @param {Record<string, number>} counts @returns {HTMLLIElement[]} */
function countItems(counts) {
  return homeStates().map(({ value, label }) => el("li", {
    className: `tile-count tile--${value}`, dataset: { state: value },
  }, el("span", { className: "tile-count-n" }, String(counts[value] || 0)), ` ${label}`));
}

/** Keep the site filter's options: every site seen so far (one for site staff). */
function noteSites(/** @type {Home[]} */ homes) {
  const select = /** @type {HTMLSelectElement} */ ($("tiles-site"));
  let added = false;
  for (const home of homes) {
    if (!sitesSeen.has(home.site_id)) {
      sitesSeen.add(home.site_id);
      added = true;
    }
  }
  if (!added) return;
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, t("All sites")),
    ...[...sitesSeen].sort().map((s) => el("option", { value: s }, t("Site {site}", { site: s }))));
  select.value = chosen;
}

/** Whether the live feed is up (while it is down the server is not reachable either). */
function feedLive() {
  return $("feed-status").classList.contains("live");
}

async function refresh() {
  if (!loadSession() || $("app-view").hidden || loading || !feedLive()) return;
  loading = true;
  try {
    /** @type {Homes} */
    const answer = await api(`/homes/state${query()}`);
    noteSites(answer.homes);
    $("tiles-grid").replaceChildren(...answer.homes.map(tile));
    $("tiles-counts").replaceChildren(...countItems(answer.counts));
    $("tiles-total").textContent = String(answer.homes.length);
    $("tiles-message").textContent = answer.homes.length ? "" : t("No homes match these filters.");
    $("tiles-panel").dataset.loadedAt = answer.at;
  } catch (err) {
    if (!(err instanceof AuthError)) {  // the page itself goes back to the login form
      $("tiles-message").textContent = t("Could not load the homes: {error}",
        { error: /** @type {Error} */ (err).message });
    }
  } finally {
    loading = false;
  }
}

/**
 * The alert list as painted (ids and states) and the feed's state: when the list changes,
 * homes may have too; when the feed comes back, the tiles may be out of date.
 */
function watchAlerts() {
  const signature = [...document.querySelectorAll("#alert-groups li.alert")]
    .map((li) => `${/** @type {HTMLElement} */ (li).dataset.alertId}:${li.className}`)
    .join(",") + (feedLive() ? "|live" : "|down");
  if (signature === alertSignature) return;
  alertSignature = signature;
  refresh();
}

function init() {
  const risk = /** @type {HTMLSelectElement} */ ($("tiles-risk"));
  risk.replaceChildren(el("option", { value: "" }, t("All risk categories")),
    ...riskTerms().map(({ value, label }) => el("option", { value }, label)));
  $("tiles-site").addEventListener("change", refresh);
  risk.addEventListener("change", refresh);
  followAppView({
    panel: "tiles-panel",
    allowed: () => {
      const session = loadSession();
      return session !== null && session.role !== "family";  // family: their own page
    },
    refresh: () => {
      refresh();
      if (watchTimer === null) watchTimer = setInterval(watchAlerts, WATCH_MS);
    },
    clear: () => {
      if (watchTimer !== null) clearInterval(watchTimer);
      watchTimer = null;
      alertSignature = "";
      sitesSeen.clear();
      $("tiles-grid").replaceChildren();
      $("tiles-counts").replaceChildren();
    },
    everyMs: REFRESH_MS,
  });
}

init();
