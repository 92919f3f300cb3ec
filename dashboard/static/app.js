// @ts-check
// Eldercare duty screen (wall screen of a care centre). Shared code: common.js and the
// modules it lists.
//
// Alerts come from the live stream (GET /api/v1/alerts/stream): stored alerts as they change,
// and alerts the pipeline has raised but not stored yet ("not yet saved"). Alerts of one
// resident are shown together; the most urgent resident comes first.

import { createAlarm } from "./alarm.js";
import { api, AuthError, loadSession } from "./api.js";
import { alertCard, handlingLines, routineChanges } from "./cards.js";
import { leaveApp, noteStreamStatus, paintFeed, showApp, showLogin, wireLogin } from "./common.js";
import { $, ageSpan, dataSpan, el, fill, reconcile, refreshAges } from "./dom.js";
import { t } from "./i18n.js";
import { now, pageClock, pageZone, siteClock } from "./time.js";
import { deviceLabel, severityLabel, statusLabel, typeLabel } from "./vocabulary.js";
import {
  isDisplay, keepRenewed, markDisplayMode, paintLost, recover, wireDisplaySetup,
} from "./display.js";

/** @typedef {import("./live.js").Item} Item */
/** @typedef {import("./live.js").FeedStatus} FeedStatus */
/**
 * A resident as GET /residents returns it.
 * @typedef {object} Resident
 * @property {number} id
 * @property {string} full_name
 * @property {string | null} address
 * @property {string} site_id
 * @property {number} open_alerts
 * @property {Device[]} devices
 */
/**
 * @typedef {object} Device
 * @property {string} type
 * @property {boolean | null} [online]
 * @property {number | null} [battery]
 * @property {string | null} [last_seen]
 */
/**
 * @typedef {object} Group
 * @property {HTMLLIElement} root
 * @property {HTMLHeadingElement} name
 * @property {HTMLParagraphElement} where
 * @property {HTMLSpanElement} count
 * @property {HTMLOListElement} list
 */
/**
 * @typedef {import("./common.js").PageState & {
 *   alarm: import("./alarm.js").Alarm | null,
 *   residents: Map<number, Resident>,
 *   groups: Map<number, Group>,
 *   fresh: Map<string, number>,
 *   bannerKey: string,
 *   ackNames: Map<number, string>,
 *   openKeys: string,
 *   residentsTimer: ReturnType<typeof setInterval> | null,
 * }} DutyState
 */

const RESIDENTS_MS = 15000;
const FRESH_MS = 60000;
const LOW_BATTERY = 20;

/** @type {DutyState} */
const state = {
  session: null,
  me: null,
  live: null,
  alarm: null,
  residents: new Map(),
  groups: new Map(),        // resident id -> {root, name, where, count, list}
  cards: new Map(),         // item key -> {root, body, actions}
  fresh: new Map(),         // "resident:type" -> until (ms): new critical alerts
  bannerKey: "",            // the critical banner's alert while it is not yet saved
  ackNames: new Map(),      // alert id -> name of whoever acknowledged it
  openKeys: "",
  downSince: 0,
  residentsTimer: null,
  tickTimer: null,
};

// --- alerts ------------------------------------------------------------------------------

/**
 * The feed and session of the page while it shows the app (every caller runs only then).
 * @returns {{live: import("./live.js").LiveAlerts, session: import("./api.js").Session}}
 */
function running() {
  if (!state.live || !state.session) throw new Error("The page is not logged in");
  return { live: state.live, session: state.session };
}

/** @param {Item} item @returns {Resident | undefined} */
function residentOf(item) {
  return state.residents.get(item.resident_id);
}

/** @param {Item} item @returns {string} */
function residentName(item) {
  const resident = residentOf(item);
  return item.resident_name || (resident && resident.full_name)
    || t("Resident #{id}", { id: item.resident_id });
}

/**
 * The zone an alert's times are shown in: its site's (`site_timezone`, from the API and the
 * stream, pending bus alerts included); should one lack it (a bus alert relayed before the
 * feed knew the sites), another alert of its site lends its zone, else the page's.
 * @param {Item} item @returns {string}
 */
function zoneOf(item) {
  if (item.site_timezone) return item.site_timezone;
  const sibling = state.live?.items().find((i) => i.site_id === item.site_id && i.site_timezone);
  return (sibling && sibling.site_timezone) || pageZone();
}

/**
 * "1 Fjord Road · site north": an address and a site, both data (translate="no").
 * @param {string | null | undefined} address @param {string} site
 * @returns {(Node | string)[]}
 */
function whereNodes(address, site) {
  const siteNodes = fill(t("site {site}"), { site: dataSpan(site) });
  return address ? [dataSpan(address), " · ", ...siteNodes] : siteNodes;
}

/** @param {Item} item @returns {string} */
function freshKey(item) {
  return `${item.resident_id}:${item.type}`;
}

/** @param {Item} item @returns {boolean} */
function isFresh(item) {
  return item.status === "open" && (state.fresh.get(freshKey(item)) || 0) > Date.now();
}

/** @param {Item[]} items @returns {Map<number, Item[]>} */
function groupByResident(items) {
  const groups = new Map();
  for (const item of items) {
    if (!groups.has(item.resident_id)) groups.set(item.resident_id, []);
    groups.get(item.resident_id).push(item);
  }
  return groups;
}

function render() {
  if (!state.live) return;
  const items = state.live.items();
  settleBanner(items);
  const groups = groupByResident(items);
  const keys = new Set(items.map((i) => i.key));
  reconcile($("alert-groups"), [...groups].map(([rid, list]) => groupNode(rid, list)));
  for (const key of state.cards.keys()) if (!keys.has(key)) state.cards.delete(key);
  for (const rid of state.groups.keys()) if (!groups.has(rid)) state.groups.delete(rid);

  const open = items.filter((i) => i.status === "open");
  $("no-alerts").hidden = items.length > 0;
  const pill = $("alert-count");
  pill.textContent = String(items.length);
  const critical = open.some((i) => i.severity === "critical");
  pill.classList.toggle("has-critical", critical);
  state.alarm?.ring(critical);  // repeats until every critical alert is acknowledged
  document.title = open.length ? t("({count}) Eldercare duty screen", { count: open.length })
    : t("Eldercare duty screen");

  const openKeys = open.map((i) => i.key).sort().join(",");
  if (openKeys !== state.openKeys) {
    state.openKeys = openKeys;
    refreshResidents(); // open-alert counts moved
  }
}

/** @param {number} residentId @param {Item[]} items @returns {HTMLLIElement} */
function groupNode(residentId, items) {
  let group = state.groups.get(residentId);
  if (!group) {
    const name = el("h3", { className: "group-name", translate: false });
    const where = el("p", { className: "group-where" });
    const count = el("span", { className: "group-count" });
    const list = el("ol", { className: "group-alerts" });
    const root = el("li", { className: "alert-group", dataset: { residentId: String(residentId) } },
      el("div", { className: "group-head" }, name, count), where, list);
    group = { root, name, where, count, list };
    state.groups.set(residentId, group);
  }
  const resident = residentOf(items[0]);
  group.name.textContent = residentName(items[0]);
  group.where.replaceChildren(...whereNodes(resident && resident.address, items[0].site_id));
  group.count.textContent = items.length === 1 ? t("1 alert")
    : t("{count} alerts", { count: items.length });
  group.root.classList.toggle("alert-group--critical",
    items.some((i) => i.severity === "critical" && i.status === "open"));
  reconcile(group.list, items.map(cardNode));
  return group.root;
}

/** @param {Item} item @returns {HTMLLIElement} */
function cardNode(item) {
  const { live, session } = running();
  const root = alertCard(state.cards, live, session.role, item, {
    actions: { onAuthError: (err) => logout(err.message), ackOnly: session.role === "display" },
    fresh: isFresh(item), name: residentName(item), body: cardBody(item),
  });
  root.dataset.uid = item.uid || "";
  return root;
}

/** @param {Item} item @returns {import("./dom.js").Child[]} */
function cardBody(item) {
  return [
    el("div", { className: "alert-head" },
      el("span", { className: "alert-type" }, typeLabel(item.type)),
      el("span", { className: "severity" }, severityLabel(item.severity).toUpperCase())),
    statusBadge(item),
    el("div", { className: "alert-age" }, ageSpan(item.opened_at), " · ",
      el("span", { className: "alert-at" },
        t("at {time}", { time: siteClock(item.opened_at, zoneOf(item)) }))),
    item.count > 1 && el("div", { className: "alert-meta" },
      ...fill(t("Repeated {count}×, last {ago}"),
        { count: item.count, ago: ageSpan(item.last_seen) })),
    item.device_id && el("div", { className: "alert-meta" },
      ...fill(t("Device {device}"), { device: dataSpan(item.device_id) })),
    ackLine(item),
    ...handlingLines(item, state.me ? state.me.id : null),
    item.pending && el("div", { className: "alert-meta" },
      t("Raised by the sensors; it can be acknowledged once it is saved.")),
    routineChanges(item, render),
    routineLink(item),
  ];
}

/**
 * A routine change is read on a chart, not at the bedside: its card links to the resident
 * page, whose Daily routine chart opens on the alert's feature with its day marked
 * (charts.js showDailyChart). Not on the wall display, which opens no other page.
 * @param {Item} item
 */
function routineLink(item) {
  const role = state.session ? state.session.role : "display";
  if (item.type !== "routine_change" || item.id === null || role === "display") return null;
  return el("div", { className: "alert-meta" }, el("a", { className: "alert-link",
    href: `/admin?${new URLSearchParams({ resident: String(item.resident_id), alert: String(item.id) })}` },
  t("Open the daily routine chart")));
}

/** @param {Item} item */
function statusBadge(item) {
  if (item.pending) return el("p", { className: "badge badge--pending" }, t("Not yet saved"));
  if (item.status === "acknowledged") {
    return el("p", { className: "badge badge--ack" }, statusLabel("acknowledged"));
  }
  return null;
}

/** @param {Item} item */
function ackLine(item) {
  if (item.status !== "acknowledged" || !item.acknowledged_at) return null;
  const since = ageSpan(item.acknowledged_at);
  const name = ackName(item);
  /** @type {(Node | string)[]} */
  let line;
  if (name === YOU) line = fill(t("Acknowledged by you {ago}"), { ago: since });
  else if (name === A_CARER) line = fill(t("Acknowledged by a carer {ago}"), { ago: since });
  else if (name === A_COLLEAGUE) {
    line = fill(t("Acknowledged by a colleague {ago}"), { ago: since });
  } else {
    line = fill(t("Acknowledged by {name} {ago}"), { name: dataSpan(String(name)), ago: since });
  }
  return el("div", { className: "alert-meta" }, ...line);
}

// Who acknowledged, when it is nobody's name (the sentence says it in the page's language).
const YOU = Symbol("you");
const A_CARER = Symbol("a carer");
const A_COLLEAGUE = Symbol("a colleague");

// Who acknowledged: you, or the name from the alert's history (fetched once per alert).
/** @param {Item} item @returns {string | symbol} */
function ackName(item) {
  // Family accounts get the family view of alerts (no staff names or ids).
  if (state.session && state.session.role === "family") return A_CARER;
  if (state.me && item.acknowledged_by === state.me.id) return YOU;
  if (item.acknowledged_name) return item.acknowledged_name;
  const id = /** @type {number} */ (item.id);  // acknowledged, so stored
  const known = state.ackNames.get(id);
  if (known) return known;
  if (!state.ackNames.has(id)) {
    state.ackNames.set(id, "");
    api(`/alerts/${id}`).then((detail) => {
      /** @type {{action: string, actor: string}[]} */
      const history = detail.history;
      const entry = [...history].reverse().find((h) => h.action === "acknowledged");
      if (entry) state.ackNames.set(id, entry.actor);
      render();
    }).catch(() => state.ackNames.delete(id));
  }
  return A_COLLEAGUE;
}

/** @param {Item} item */
function onFresh(item) {
  $("announcer").replaceChildren(...fill(t("New {severity} alert: {type}, {name}."), {
    severity: severityLabel(item.severity).toLowerCase(), type: typeLabel(item.type),
    name: dataSpan(residentName(item)) }));
  if (item.severity !== "critical") return;
  state.fresh.set(freshKey(item), Date.now() + FRESH_MS);
  state.bannerKey = item.pending ? freshKey(item) : "";
  paintBanner(item);
  $("critical-banner").hidden = false;
  state.alarm?.play();
}

/** The critical banner's words; "(not yet saved)" only while the alert is. @param {Item} item */
function paintBanner(item) {
  const words = { type: typeLabel(item.type), name: dataSpan(residentName(item)) };
  $("critical-banner").replaceChildren(...fill(item.pending
    ? t("New critical alert: {type} — {name} (not yet saved)")
    : t("New critical alert: {type} — {name}"), words));
}

/** Once the alert the banner calls unsaved is stored, the banner says so too. @param {Item[]} items */
function settleBanner(items) {
  if (!state.bannerKey) return;
  const stored = items.find((i) => !i.pending && freshKey(i) === state.bannerKey);
  if (!stored) return;
  state.bannerKey = "";
  paintBanner(stored);
}

// --- residents ----------------------------------------------------------------------------

/** @param {Device} device @returns {HTMLLIElement} */
function deviceLine(device) {
  let status;
  if (device.online === null || device.online === undefined) {
    status = el("span", { className: "state-unknown" }, t("no status yet"));
  } else if (device.online) {
    status = el("span", { className: "state-ok" }, t("online"));
  } else {
    status = el("span", { className: "state-bad" }, t("OFFLINE"));
  }
  let battery = null;
  if (device.battery !== null && device.battery !== undefined) {
    battery = device.battery <= LOW_BATTERY
      ? el("span", { className: "state-bad" }, t("battery LOW {percent}%",
        { percent: device.battery }))
      : el("span", {}, t("battery {percent}%", { percent: device.battery }));
  }
  const seen = device.last_seen ? ageSpan(device.last_seen, "muted") : null;
  return el("li", { className: "device" },
    el("span", { className: "device-name" }, deviceLabel(device.type)),
    status, battery, seen && el("span", { className: "muted" }, ...fill(t("seen {ago}"),
      { ago: seen })));
}

function renderResidents() {
  const residents = [...state.residents.values()];
  $("resident-grid").replaceChildren(...residents.map((r) => el(
    "li",
    { className: r.open_alerts ? "resident resident--alert" : "resident" },
    el("h3", { className: "resident-name", translate: false }, r.full_name),
    el("p", { className: "resident-where" }, ...whereNodes(r.address, r.site_id)),
    r.open_alerts > 0 && el("p", { className: "resident-alerts" },
      r.open_alerts === 1 ? t("1 open alert") : t("{count} open alerts", { count: r.open_alerts })),
    r.devices.length
      ? el("ul", { className: "devices",
        "aria-label": t("Devices of {name}", { name: r.full_name }) },
      ...r.devices.map(deviceLine))
      : el("p", { className: "muted" }, t("No devices")),
  )));
  $("residents-message").textContent = residents.length ? "" : t("No residents to show.");
}

/** @returns {Promise<void>} */
async function refreshResidents() {
  try {
    /** @type {Resident[]} */
    const residents = await api("/residents");
    state.residents = new Map(residents.map((r) => [r.id, r]));
    renderResidents();
    render(); // names and addresses come from the residents list
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    $("residents-message").textContent = t("Could not load residents: {error}",
      { error: err.message });
  }
  return undefined;
}

// --- status, clock, ages --------------------------------------------------------------------

/** @param {FeedStatus} status */
function onStatus(status) {
  if (!state.live) return;
  noteStreamStatus(state, status);
  tick();
}

/** @type {import("./common.js").FeedTexts} */
const FEED_TEXTS = {
  live: (status, dbDown) => (dbDown ? t("Live · database unavailable")
    : t("Live · {time}", { time: pageClock(status.lastHeard, true) })),
  lost: (status) => {
    const error = status.error;
    return status.lastHeard
      ? t("Connection lost: alerts may be out of date (last update {time}). Retrying… {error}",
        { time: pageClock(status.lastHeard, true), error })
      : t("Connection lost: alerts may be out of date (no update yet). Retrying… {error}",
        { error });
  },
  get dbDown() {
    return t("The database is unavailable. New alerts still appear here, marked “not yet saved”, but cannot be acknowledged or resolved until it is back.");
  },
};

function tick() {
  $("clock").textContent = pageClock(now());
  refreshAges();
  paintFeed(running().live.status(), state.downSince, FEED_TEXTS);
  paintLost(state.downSince);
  expireFresh();
}

// New-critical highlights last FRESH_MS, or until the alert is acknowledged.
function expireFresh() {
  const t = Date.now();
  let expired = false;
  for (const [key, until] of state.fresh) {
    if (until <= t) {
      state.fresh.delete(key);
      expired = true;
    }
  }
  if (!running().live.items().some(isFresh)) $("critical-banner").hidden = true;
  if (expired) render();
}

// --- screens ----------------------------------------------------------------------------------

/** @param {import("./api.js").Session} session */
function showDuty(session) {
  if (session.role === "family") {  // relatives have their own page (family.js)
    window.location.assign("/family");
    return;
  }
  state.openKeys = "";
  markDisplayMode(session.role === "display");
  if (session.role === "display") keepRenewed(session);
  showApp(state, session, { onChange: render, onStatus, onFresh, logout });
  api("/me").then((me) => { state.me = me; render(); }).catch(() => {});
  refreshResidents();
  state.residentsTimer = setInterval(refreshResidents, RESIDENTS_MS);
  state.tickTimer = setInterval(tick, 1000);
  tick();
}

/** @param {string} [message] */
function logout(message = "") {
  if (isDisplay()) return displayTrouble();  // a wall display never shows the login form
  stopDuty();
  state.alarm?.ring(false);
  state.groups.clear();
  state.fresh.clear();
  state.ackNames.clear();
  $("alert-groups").replaceChildren();
  $("resident-grid").replaceChildren();
  document.title = t("Eldercare duty screen");
  leaveApp(state, message);
  return undefined;
}

/** Stop the page's own timers (the feed is stopped by the caller). */
function stopDuty() {
  if (state.residentsTimer !== null) clearInterval(state.residentsTimer);
  state.residentsTimer = null;
}

// A wall display whose session was refused: keep showing the last known alerts under
// "Connection lost since …" and renew until it works, then start again (docs/dashboard.md).
function displayTrouble() {
  if (!state.downSince) state.downSince = Date.now();
  recover(restartAsDisplay, state.downSince, stopAll);
}

/** @param {import("./api.js").Session} session */
function restartAsDisplay(session) {
  stopAll();
  showDuty(session);
}

function stopAll() {
  stopDuty();
  if (state.live) state.live.stop();
  if (state.tickTimer !== null) clearInterval(state.tickTimer);
  state.tickTimer = null;
}

function init() {
  state.alarm = createAlarm({ toggle: $("sound-button"), test: $("sound-test"),
    banner: $("sound-banner") });
  wireLogin(showDuty);
  wireDisplaySetup(() => state.session);
  $("logout-button").addEventListener("click", () => logout(t("You have logged out.")));
  const session = loadSession();
  if (isDisplay()) {  // a wall display: its own session, renewed by itself
    markDisplayMode(true);
    $("login-view").hidden = true;
    if (session && session.role === "display") showDuty(session);
    else recover(showDuty, Date.now(), stopAll);
  } else if (session) showDuty(session);
  else showLogin();
}

init();
