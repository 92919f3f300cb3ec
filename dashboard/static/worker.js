// @ts-check
// Eldercare care worker's phone page (/worker, and /alerts/{id} from a notification).
// Shared code: common.js and the modules it lists. Mobile first: one column, big buttons.
//
// "My queue": active alerts assigned to the logged-in user or acknowledged (claimed) by them.
// "Open at my site": every other active alert in scope, including alerts raised but not yet
// saved; Acknowledge claims one. Live via the stream. Each card can call the resident or
// their contacts and open the address in maps (reach.js). Times are the site's (siteTime).
// One-handed: a bar at the bottom of the screen jumps to each list (thumb's reach).
// Every text is in the page's language (t(), worker.html's _()); data (names, addresses,
// device ids) is marked translate="no".

import { api, ApiError, AuthError, loadSession } from "./api.js";
import { alertCard, routineChanges } from "./cards.js";
import { leaveApp, noteStreamStatus, paintFeed, showApp, showLogin, wireLogin } from "./common.js";
import { $, $button, ageSpan, el, reconcile, refreshAges } from "./dom.js";
import { t } from "./i18n.js";
import { phrase } from "./phrase.js";
import { pruneReach, reachNode, resetReach } from "./reach.js";
import { siteTime } from "./time.js";
import { alertVisitNode, refreshVisits, showCount, startVisits, stopVisits } from "./visits.js";
import { severityLabel, statusLabel, typeLabel } from "./vocabulary.js";

/** @typedef {import("./live.js").Item} Item */
/** @typedef {import("./live.js").FeedStatus} FeedStatus */
/**
 * @typedef {import("./common.js").PageState & {
 *   residents: Map<number, {id: number, full_name: string, address: string | null}>,
 *   focusAlert: number | null,
 *   focusUntil: number,
 *   focusScrolled: boolean,
 *   zones: Map<string, string>,
 * }} WorkerState
 */
const SUBSCRIBE_TIMEOUT_MS = 30000;  // a push service that never answers must not hang the page
const FOCUS_MS = 20000;  // how long the alert a notification linked to stays highlighted
const SITE_ROLES = new Set(["duty_officer", "care_worker"]);

/** @type {WorkerState} */
const state = {
  session: null,
  me: null,
  live: null,
  residents: new Map(),
  cards: new Map(),   // item key -> {root, body, actions}
  downSince: 0,
  tickTimer: null,
  focusAlert: focusFromPath(),
  focusUntil: Infinity, // highlight until FOCUS_MS after the alert was scrolled into view
  focusScrolled: false,
  zones: new Map(),   // site id -> its IANA time zone (GET /sites)
};

/** @returns {number | null} the alert a notification linked to */
function focusFromPath() {
  const match = /^\/alerts\/(\d+)$/.exec(window.location.pathname);
  return match ? Number(match[1]) : null;
}

// --- alerts ----------------------------------------------------------------------------

/**
 * The feed and session of the page while it shows the app (every caller runs only then).
 * @returns {{live: import("./live.js").LiveAlerts, session: import("./api.js").Session}}
 */
function running() {
  if (!state.live || !state.session) throw new Error("The page is not logged in");
  return { live: state.live, session: state.session };
}

/** @param {Item} item @returns {string} */
function residentName(item) {
  const resident = state.residents.get(item.resident_id);
  return item.resident_name || (resident && resident.full_name)
    || t("Resident #{id}", { id: item.resident_id });
}

/**
 * The site's zone for its times: from GET /sites, else the only zone known, else UTC.
 * @param {string | null} [site]
 * @returns {string}
 */
function zoneOf(site) {
  const zone = site ? state.zones.get(site) : undefined;
  if (zone) return zone;
  const zones = new Set(state.zones.values());
  return zones.size === 1 ? [...zones][0] : "UTC";
}

/**
 * The zone of an alert's times: its own `site_timezone` (sent with alert rows and stream
 * events), else its site's from GET /sites.
 * @param {Item} item
 * @returns {string}
 */
function alertZone(item) {
  const own = /** @type {{site_timezone?: string | null}} */ (item).site_timezone;
  return own || zoneOf(item.site_id);
}

/** @param {Item} item @returns {boolean} whether it is in my queue */
function isMine(item) {
  const myId = state.me ? state.me.id : null;
  return myId !== null && (item.assigned_to === myId || item.acknowledged_by === myId);
}

function render() {
  if (!state.live) return;
  const items = state.live.items();
  const mine = items.filter(isMine);
  const others = items.filter((i) => !mine.includes(i));
  reconcile($("mine-list"), mine.map(cardNode));
  reconcile($("site-list"), others.map(cardNode));
  const keys = new Set(items.map((i) => i.key));
  for (const key of state.cards.keys()) if (!keys.has(key)) state.cards.delete(key);
  pruneReach("alert:", new Set(items.map((i) => `alert:${i.key}`)));
  showCount("mine", mine.length);
  showCount("site", others.length);
  $("mine-empty").hidden = mine.length > 0;
  $("site-empty").hidden = others.length > 0;
  const open = items.filter((i) => i.status === "open").length;
  const title = t("Eldercare: my alerts");
  document.title = open ? `(${open}) ${title}` : title;
  scrollToFocused();
}

/** @param {Item} item @returns {HTMLLIElement} */
function cardNode(item) {
  const focused = item.id !== null && item.id === state.focusAlert
    && Date.now() < state.focusUntil;
  const { live, session } = running();
  const root = alertCard(state.cards, live, session.role, item, {
    actions: { big: true, onAuthError: (err) => logout(err.message) },
    fresh: focused, name: residentName(item), body: cardBody(item),
  });
  root.id = item.id === null ? "" : `alert-${item.id}`;
  return root;
}

/** @param {Item} item @returns {import("./dom.js").Child[]} */
function cardBody(item) {
  const resident = state.residents.get(item.resident_id);
  return [
    el("div", { className: "alert-head" },
      el("span", { className: "alert-type" }, typeLabel(item.type)),
      el("span", { className: "severity" }, severityLabel(item.severity).toUpperCase())),
    el("div", { className: "worker-resident", translate: false }, residentName(item)),
    resident && resident.address
      && el("div", { className: "alert-meta", translate: false }, resident.address),
    item.pending && el("p", { className: "badge badge--pending" }, t("Not yet saved")),
    item.status === "acknowledged" && el("p", { className: "badge badge--ack" },
      state.me && item.acknowledged_by === state.me.id ? t("Acknowledged by you")
        : statusLabel("acknowledged")),
    el("div", { className: "alert-age" },
      ageSpan(item.opened_at), ` · ${siteTime(item.opened_at, alertZone(item))}`),
    item.count > 1 && el("div", { className: "alert-meta" },
      t("Repeated {count}×", { count: item.count })),
    item.device_id && el("div", { className: "alert-meta" },
      ...phrase(t("Device {device}"), { device: item.device_id })),
    routineChanges(item, render),
    item.pending && el("div", { className: "alert-meta" },
      t("Raised by the sensors; it can be acknowledged once it is saved.")),
    !item.pending && alertVisitNode(item.id),
    reachNode(`alert:${item.key}`, item.resident_id),
  ];
}

function scrollToFocused() {
  if (state.focusAlert === null || state.focusScrolled) return;
  const card = $(`alert-${state.focusAlert}`);
  if (!card) return;
  card.scrollIntoView({ block: "center" });
  // Scroll once; keep the highlight a while, across updates, so the worker sees which
  // alert the notification was about.
  state.focusScrolled = true;
  state.focusUntil = Date.now() + FOCUS_MS;
  setTimeout(render, FOCUS_MS + 50);
}

/** @param {Item} item */
function onFresh(item) {
  $("announcer").textContent = t("New {severity} alert: {type}, {resident}.", {
    severity: severityLabel(item.severity).toLowerCase(), type: typeLabel(item.type),
    resident: residentName(item) });
  if (item.severity !== "critical") return;
  $("critical-banner").replaceChildren(...phrase(t("New critical alert: {type} — {resident}"),
    { type: typeLabel(item.type), resident: residentName(item) }));
  $("critical-banner").hidden = false;
  if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
}

async function loadSites() {
  try {
    /** @type {{id: string, timezone: string}[]} */
    const sites = await api("/sites");
    state.zones = new Map(sites.map((s) => [s.id, s.timezone]));
    render();
    refreshVisits();  // visit times painted before the zones were known were in UTC
  } catch (err) {
    if (err instanceof AuthError) logout(err.message);
    // Times then show in UTC, labelled by siteTime's caller as the site's: rare and visible.
  }
}

async function loadResidents() {
  try {
    /** @type {{id: number, full_name: string, address: string | null}[]} */
    const residents = await api("/residents");
    state.residents = new Map(residents.map((r) => [r.id, r]));
    render();
  } catch (err) {
    if (err instanceof AuthError) logout(err.message);
    // Names then come from the alerts themselves; nothing else depends on this list.
  }
}

// --- duty ------------------------------------------------------------------------------

/** @param {boolean} onDuty */
function showDuty(onDuty) {
  const button = $button("duty-button");
  button.setAttribute("aria-pressed", String(onDuty));
  button.textContent = onDuty ? t("On duty ✓") : t("Go on duty");
  $("duty-message").textContent = onDuty
    ? t("You are on duty: new alerts at your site can be assigned to you.")
    : t("You are off duty: no alerts are assigned to you.");
  $("duty-message").className = "notify-message";
}

/** Counts duty requests, so that an answer overtaken by a later request (a load still on its
 * way when the worker taps) cannot repaint the button with the older state. */
let dutyRequests = 0;

async function loadDuty() {
  const button = $button("duty-button");
  button.hidden = !SITE_ROLES.has(running().session.role);
  if (button.hidden) return;
  const request = ++dutyRequests;
  try {
    const answer = await api("/me/duty");
    if (request === dutyRequests) showDuty(answer.on_duty);
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    dutyError(t("Could not load your duty status: {reason}", { reason: err.message }));
  }
  return undefined;
}

/** @param {string} text */
function dutyError(text) {
  $("duty-message").textContent = text;
  $("duty-message").className = "notify-message notify-message--error";
}

async function toggleDuty() {
  const button = $button("duty-button");
  const wanted = button.getAttribute("aria-pressed") !== "true";
  button.disabled = true;
  const request = ++dutyRequests;
  try {
    const answer = await api("/me/duty", { method: "PUT", body: { on_duty: wanted } });
    if (request === dutyRequests) showDuty(answer.on_duty);
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    dutyError(t("Could not change your duty status: {reason}", { reason: err.message }));
  } finally {
    button.disabled = false;
  }
  return undefined;
}

// --- notifications -----------------------------------------------------------------------

function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** @param {string} base64url @returns {Uint8Array<ArrayBuffer>} */
function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/**
 * @param {PushSubscription} subscription
 * @param {Uint8Array<ArrayBuffer>} key
 * @returns {boolean} whether it was made with this server key
 */
function sameKey(subscription, key) {
  const current = subscription.options && subscription.options.applicationServerKey;
  if (!current) return true;
  const a = new Uint8Array(current);
  return a.length === key.length && a.every((byte, i) => byte === key[i]);
}

/**
 * @param {ServiceWorkerRegistration} registration
 * @param {Uint8Array<ArrayBuffer>} key
 * @returns {Promise<PushSubscription>}
 */
async function subscribe(registration, key) {
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, key)) {
    await subscription.unsubscribe(); // the server's key changed
    subscription = null;
  }
  if (subscription) return subscription;
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      t("the push service did not answer; try again later"))), SUBSCRIBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([timeout, registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: key,
    })]);
  } finally {
    clearTimeout(timer);
  }
}

async function enableNotifications() {
  if (!pushSupported()) {
    throw new Error(t("This browser cannot show notifications from web pages. On an iPhone, add this page to the home screen first (Share → Add to Home Screen), then open it from there."));
  }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error(t("Notifications are blocked for this site. Allow them in the browser's site settings, then try again."));
  }
  const { public_key: publicKey } = await api("/push/vapid-public-key");
  await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  const registration = await navigator.serviceWorker.ready;
  const key = keyBytes(publicKey);
  const subscription = await subscribeOrExplain(registration, key);
  try {
    await registerSubscription(subscription);
  } catch (err) {
    // 409: this browser's subscription belongs to someone who used this phone before. A
    // fresh subscription gets a new endpoint of our own (theirs then expires).
    if (!(err instanceof ApiError) || err.status !== 409) throw err;
    await subscription.unsubscribe();
    await registerSubscription(await subscribeOrExplain(registration, key));
  }
}

/**
 * @param {ServiceWorkerRegistration} registration
 * @param {Uint8Array<ArrayBuffer>} key
 * @returns {Promise<PushSubscription>}
 */
async function subscribeOrExplain(registration, key) {
  try {
    return await subscribe(registration, key);
  } catch (err) {
    throw new Error(t("This phone could not subscribe to notifications ({reason}).",
      { reason: err.message }));
  }
}

/** @param {PushSubscription} subscription @returns {Promise<any>} */
function registerSubscription(subscription) {
  return api("/me/channels", {
    method: "POST", body: { kind: "webpush", subscription: subscription.toJSON() },
  });
}

async function onEnableNotifications() {
  const button = $button("notify-button");
  const message = $("notify-message");
  button.disabled = true;
  message.className = "notify-message";
  message.textContent = t("Setting up notifications…");
  try {
    await enableNotifications();
    message.textContent = t("Notifications are on for this phone.");
    button.textContent = t("Notifications on ✓ (tap to register again)");
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    message.className = "notify-message notify-message--error";
    message.textContent = err.message;
  } finally {
    button.disabled = false;
  }
  return undefined;
}

/**
 * Keep the service worker registered and current on every visit (push reaches a locked
 * phone only through it), or say why this address cannot have one: browsers allow service
 * workers and Push only in a secure context (HTTPS, or localhost).
 */
async function prepareServiceWorker() {
  if (!window.isSecureContext) {
    $("notify-message").textContent = t("Notifications need a secure (https://) address: open this page through the address your administrator gave for phones.");
    $("notify-message").className = "notify-message notify-message--error";
    return;
  }
  if ("serviceWorker" in navigator) await navigator.serviceWorker.register("/sw.js", { scope: "/" });
}

async function showNotificationState() {
  await prepareServiceWorker();
  if (!pushSupported() || Notification.permission !== "granted") return;
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && await registration.pushManager.getSubscription();
  if (subscription) $("notify-button").textContent = t("Notifications on ✓ (tap to register again)");
}

// --- status ------------------------------------------------------------------------------

/** @param {FeedStatus} status */
function onStatus(status) {
  if (!state.live) return;
  noteStreamStatus(state, status);
  tick();
}

/** @type {import("./common.js").FeedTexts} */
const FEED_TEXTS = {
  live: (_status, dbDown) => (dbDown ? t("Live · database down") : t("Live")),
  lost: (status) => t("Connection lost: this list may be out of date. {reason}",
    { reason: status.error }),
  dbDown: t("The database is unavailable: new alerts still show up (“not yet saved”), but cannot be acknowledged until it is back."),
};

function tick() {
  if (!state.live) return;
  refreshAges();
  paintFeed(state.live.status(), state.downSince, FEED_TEXTS);
}

// --- screens -------------------------------------------------------------------------------

/** @param {import("./api.js").Session} session */
function showPage(session) {
  if (session.role === "family") {  // e.g. a notification's /alerts/{id} link: their own page
    window.location.assign("/family");
    return;
  }
  showApp(state, session, { onChange: render, onStatus, onFresh, logout });
  api("/me").then((me) => {
    state.me = me;
    render();
    if (session.role !== "family") {
      startVisits({ onChange: render, onAuthError: logout, myId: () => state.me?.id ?? null,
        zone: () => zoneOf(state.session?.site_id) });
    }
  }).catch((err) => { if (err instanceof AuthError) logout(err.message); });
  resetReach(logout);
  loadSites();
  loadResidents();
  loadDuty();
  showNotificationState().catch(() => {});
  state.tickTimer = setInterval(tick, 1000);
  tick();
}

/** @param {string} [message] */
function logout(message = "") {
  stopVisits();
  resetReach();
  $("mine-list").replaceChildren();
  $("site-list").replaceChildren();
  $("notify-message").textContent = "";
  document.title = t("Eldercare: my alerts");
  leaveApp(state, message);
}

function init() {
  wireLogin(showPage);
  $("logout-button").addEventListener("click", () => logout(t("You have logged out.")));
  $("duty-button").addEventListener("click", toggleDuty);
  $("notify-button").addEventListener("click", onEnableNotifications);
  $("critical-banner").addEventListener("click", () => { $("critical-banner").hidden = true; });
  const session = loadSession();
  if (session) showPage(session);
  else showLogin();
}

init();
