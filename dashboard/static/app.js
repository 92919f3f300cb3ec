// @ts-check
// Eldercare duty screen (wall screen of a care centre). Shared code: common.js and the
// modules it lists.
//
// Alerts come from the live stream (GET /api/v1/alerts/stream): stored alerts as they change,
// and alerts the pipeline has raised but not stored yet ("not yet saved"). Alerts of one
// resident are shown together; the most urgent resident comes first.

import { createAlarm } from "./alarm.js";
import { api, AuthError, loadSession } from "./api.js";
import { alertCard, handlingLines } from "./cards.js";
import { leaveApp, noteStreamStatus, paintFeed, showApp, showLogin, wireLogin } from "./common.js";
import { $, ageSpan, el, reconcile, refreshAges } from "./dom.js";
import { clockTime, now } from "./time.js";
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
  return item.resident_name || (resident && resident.full_name) || `Resident #${item.resident_id}`;
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
  document.title = open.length ? `(${open.length}) Eldercare duty screen` : "Eldercare duty screen";

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
    const name = el("h3", { className: "group-name" });
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
  group.where.textContent = [resident && resident.address, `site ${items[0].site_id}`]
    .filter(Boolean).join(" · ");
  group.count.textContent = items.length === 1 ? "1 alert" : `${items.length} alerts`;
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
    el("div", { className: "alert-age" },
      ageSpan(item.opened_at), ` · at ${clockTime(Date.parse(item.opened_at))}`),
    item.count > 1 && el("div", { className: "alert-meta" },
      `Repeated ${item.count}×, last `, ageSpan(item.last_seen)),
    item.device_id && el("div", { className: "alert-meta" }, `Device ${item.device_id}`),
    ackLine(item),
    ...handlingLines(item, state.me ? state.me.id : null),
    item.pending && el("div", { className: "alert-meta" },
      "Raised by the sensors; it can be acknowledged once it is saved."),
  ];
}

/** @param {Item} item */
function statusBadge(item) {
  if (item.pending) return el("p", { className: "badge badge--pending" }, "Not yet saved");
  if (item.status === "acknowledged") {
    return el("p", { className: "badge badge--ack" }, statusLabel("acknowledged"));
  }
  return null;
}

/** @param {Item} item */
function ackLine(item) {
  if (item.status !== "acknowledged" || !item.acknowledged_at) return null;
  return el("div", { className: "alert-meta" },
    `Acknowledged by ${ackName(item)} `, ageSpan(item.acknowledged_at));
}

// Who acknowledged: "you", or the name from the alert's history (fetched once per alert).
/** @param {Item} item @returns {string} */
function ackName(item) {
  // Family accounts get the family view of alerts (no staff names or ids).
  if (state.session && state.session.role === "family") return "a carer";
  if (state.me && item.acknowledged_by === state.me.id) return "you";
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
  return "a colleague";
}

/** @param {Item} item */
function onFresh(item) {
  $("announcer").textContent =
    `New ${severityLabel(item.severity).toLowerCase()} alert: ${typeLabel(item.type)}, ` +
    `${residentName(item)}.`;
  if (item.severity !== "critical") return;
  state.fresh.set(freshKey(item), Date.now() + FRESH_MS);
  const banner = $("critical-banner");
  banner.textContent = `New critical alert: ${typeLabel(item.type)} — ${residentName(item)}` +
    `${item.pending ? " (not yet saved)" : ""}`;
  banner.hidden = false;
  state.alarm?.play();
}

// --- residents ----------------------------------------------------------------------------

/** @param {Device} device @returns {HTMLLIElement} */
function deviceLine(device) {
  let status;
  if (device.online === null || device.online === undefined) {
    status = el("span", { className: "state-unknown" }, "no status yet");
  } else if (device.online) {
    status = el("span", { className: "state-ok" }, "online");
  } else {
    status = el("span", { className: "state-bad" }, "OFFLINE");
  }
  let battery = null;
  if (device.battery !== null && device.battery !== undefined) {
    battery = device.battery <= LOW_BATTERY
      ? el("span", { className: "state-bad" }, `battery LOW ${device.battery}%`)
      : el("span", {}, `battery ${device.battery}%`);
  }
  const seen = device.last_seen ? ageSpan(device.last_seen, "muted") : null;
  return el("li", { className: "device" },
    el("span", { className: "device-name" }, deviceLabel(device.type)),
    status, battery, seen && el("span", { className: "muted" }, "seen ", seen));
}

function renderResidents() {
  const residents = [...state.residents.values()];
  $("resident-grid").replaceChildren(...residents.map((r) => el(
    "li",
    { className: r.open_alerts ? "resident resident--alert" : "resident" },
    el("h3", { className: "resident-name" }, r.full_name),
    el("p", { className: "resident-where" },
      [r.address, `site ${r.site_id}`].filter(Boolean).join(" · ")),
    r.open_alerts > 0 && el("p", { className: "resident-alerts" },
      r.open_alerts === 1 ? "1 open alert" : `${r.open_alerts} open alerts`),
    r.devices.length
      ? el("ul", { className: "devices", "aria-label": `Devices of ${r.full_name}` },
        ...r.devices.map(deviceLine))
      : el("p", { className: "muted" }, "No devices"),
  )));
  $("residents-message").textContent = residents.length ? "" : "No residents to show.";
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
    $("residents-message").textContent = `Could not load residents: ${err.message}`;
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
  live: (status, dbDown) => (dbDown ? "Live · database unavailable"
    : `Live · ${clockTime(status.lastHeard, true)}`),
  lost: (status) => {
    const last = status.lastHeard ? clockTime(status.lastHeard, true) : "never";
    return `Connection lost: alerts may be out of date (last update ${last}). ` +
      `Retrying… ${status.error}`;
  },
  dbDown: "The database is unavailable. New alerts still appear here, marked " +
    "“not yet saved”, but cannot be acknowledged or resolved until it is back.",
};

function tick() {
  $("clock").textContent = clockTime(now());
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
  document.title = "Eldercare duty screen";
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
  $("logout-button").addEventListener("click", () => logout("You have logged out."));
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
