// @ts-check
// The live set of alerts: the open/acknowledged alerts plus "not yet saved" bus alerts,
// kept current by the stream and reloaded on every (re)connect.

import { api, AuthError } from "./api.js";
import { t } from "./i18n.js";
import { openAlertStream } from "./stream.js";
import { severityRank } from "./vocabulary.js";

const ACTIVE_QUERY = "/alerts?status=open&status=acknowledged&limit=500";
const SAFETY_RELOAD_MS = 60000;   // the stream is primary; this only repairs drift
const PENDING_GRACE_MS = 120000;  // an unsaved alert the database never stored is dropped

/**
 * An alert as GET /alerts returns it (the family view has fewer fields).
 * @typedef {object} Alert
 * @property {number} id
 * @property {string | null} [uid]
 * @property {number} resident_id
 * @property {string | null} resident_name
 * @property {string} site_id
 * @property {string | null} [device_id]
 * @property {string} type
 * @property {string} severity
 * @property {string} status
 * @property {string} opened_at
 * @property {string} last_seen
 * @property {number} count
 * @property {number | null} [assigned_to]
 * @property {number | null} [acknowledged_by]
 * @property {string | null} acknowledged_at
 * @property {string | null} [escalates_at] while open: the next escalation step's deadline
 * @property {string | null} [assigned_name]
 * @property {string | null} [acknowledged_name]
 * @property {string} [site_timezone] the site's IANA zone: the alert's times are shown in it
 *   (a pending alert from the bus has it too; should one lack it, the page's zone stands in)
 */
/**
 * A `pending` event of the stream: an alert the pipeline raised, not stored yet.
 * @typedef {object} PendingEvent
 * @property {string} uid
 * @property {string} action "raised", or anything else to withdraw it
 * @property {number} resident_id
 * @property {string} site
 * @property {string | null} device_id
 * @property {string} type
 * @property {string} severity
 * @property {string} at
 * @property {number | null} [alert_id]
 * @property {string} [site_timezone] the site's IANA zone
 */
/**
 * One entry of the list the pages show: a stored alert or a pending one (id null).
 * @typedef {Omit<Alert, "id"> & {id: number | null, key: string, pending: boolean}} Item
 */
/**
 * @typedef {object} PartState
 * @property {boolean} up
 * @property {string | null} [since]
 * @property {string | null} [reason]
 */
/**
 * The feed's health as the pages paint it.
 * @typedef {object} FeedStatus
 * @property {string} stream "connecting", "live", "down" or "closed"
 * @property {boolean | null} database
 * @property {boolean | null} bus
 * @property {Record<string, PartState>} parts
 * @property {number} lastHeard
 * @property {string} error
 * @property {boolean} loaded
 */
/**
 * @typedef {object} LiveHandlers
 * @property {() => void} onChange the list changed
 * @property {(status: FeedStatus) => void} onStatus the feed's health changed
 * @property {(error: Error) => void} onAuthError the session has ended
 * @property {(item: Item) => void} onFresh a new open alert arrived
 */
/**
 * @typedef {object} LiveAlerts
 * @property {() => void} start
 * @property {() => void} stop
 * @property {() => Item[]} items most urgent first
 * @property {(alert: Alert) => void} applyAlert
 * @property {() => Promise<void>} reload
 * @property {() => FeedStatus} status
 */

/** @param {{status: string}} alert @returns {boolean} */
function isActive(alert) {
  return alert.status === "open" || alert.status === "acknowledged";
}

/**
 * A stored alert is the incident an unsaved bus alert announced: same uid, or (the store
 * keeps one open alert per resident and type) the same resident and type.
 * @param {Alert} alert
 * @param {PendingEvent} event
 * @returns {boolean}
 */
function sameIncident(alert, event) {
  return Boolean((alert.uid && alert.uid === event.uid) || event.alert_id === alert.id ||
    (alert.resident_id === event.resident_id && alert.type === event.type));
}

/** @param {Alert} a @returns {Item} */
function alertItem(a) {
  return { ...a, key: `a${a.id}`, pending: false };
}

/** @param {PendingEvent} e @returns {Item} */
function pendingItem(e) {
  return {
    key: `p${e.uid}`, pending: true, id: null, uid: e.uid, resident_id: e.resident_id,
    resident_name: null, site_id: e.site, device_id: e.device_id, type: e.type,
    severity: e.severity, status: "open", opened_at: e.at, last_seen: e.at, count: 1,
    assigned_to: null, acknowledged_by: null, acknowledged_at: null,
    site_timezone: e.site_timezone,
  };
}

/** @param {Item} item @returns {number[]} */
function itemRank(item) {
  return [item.status === "open" ? 0 : 1, severityRank(item.severity),
    Date.parse(item.opened_at)];
}

/** @param {number[]} a @param {number[]} b @returns {number} */
function compareRanks(a, b) {
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Open before acknowledged, louder first, older first. @param {Item} a @param {Item} b */
export function compareItems(a, b) {
  return compareRanks(itemRank(a), itemRank(b));
}

/**
 * @param {LiveHandlers} handlers
 * @returns {LiveAlerts}
 */
export function createLiveAlerts({ onChange, onStatus, onAuthError, onFresh }) {
  /** @type {Map<number, Alert>} */
  const alerts = new Map();   // id -> alert (active only)
  /** @type {Map<string, {event: PendingEvent, since: number}>} */
  const pending = new Map();  // uid -> {event, since}
  /** @type {FeedStatus} */
  const status = { stream: "connecting", database: null, bus: null, parts: {}, lastHeard: 0,
    error: "", loaded: false };
  /** @type {import("./stream.js").AlertStream | null} */
  let stream = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let safetyTimer;
  /** @type {Alert[] | null} */
  let reloading = null;       // events that arrived during a reload, re-applied after it

  function changed() { onChange(); }
  function statusChanged() { onStatus({ ...status }); }

  /** @param {Item} item */
  function fresh(item) {
    if (status.loaded) onFresh(item);
  }

  /** @param {Alert} alert */
  function dropPendingFor(alert) {
    for (const [uid, { event }] of pending) {
      if (sameIncident(alert, event)) pending.delete(uid);
    }
  }

  /** @param {Alert} alert @param {boolean} [fromServerPush] */
  function applyAlert(alert, fromServerPush = false) {
    if (fromServerPush && reloading) reloading.push(alert);
    const known = alerts.has(alert.id);
    const wasPending = [...pending.values()].some(({ event }) => sameIncident(alert, event));
    if (isActive(alert)) alerts.set(alert.id, alert);
    else alerts.delete(alert.id);
    dropPendingFor(alert);
    if (fromServerPush && !known && !wasPending && alert.status === "open") {
      fresh(alertItem(alert));
    }
    changed();
  }

  /** @param {PendingEvent} event */
  function applyPending(event) {
    if (event.action !== "raised") {
      pending.delete(event.uid);
      return changed();
    }
    const stored = [...alerts.values()].some((a) => sameIncident(a, event));
    if (stored || pending.has(event.uid)) return undefined;
    pending.set(event.uid, { event, since: Date.now() });
    fresh(pendingItem(event));
    return changed();
  }

  function prunePending() {
    for (const [uid, { event, since }] of pending) {
      const stored = [...alerts.values()].some((a) => sameIncident(a, event));
      const stale = status.database && Date.now() - since > PENDING_GRACE_MS;
      if (stored || stale) pending.delete(uid);
    }
  }

  /** @returns {Promise<void>} */
  async function reload() {
    reloading = [];
    try {
      /** @type {unknown} */
      const list = await api(ACTIVE_QUERY);
      if (!Array.isArray(list)) throw new Error(t("the server sent no list; retrying"));
      const before = new Set(alerts.keys());
      alerts.clear();
      for (const alert of list) alerts.set(alert.id, alert);
      for (const alert of reloading) {
        if (isActive(alert)) alerts.set(alert.id, alert);
        else alerts.delete(alert.id);
      }
      prunePending();
      if (status.loaded) {
        for (const alert of alerts.values()) {
          if (!before.has(alert.id) && alert.status === "open") fresh(alertItem(alert));
        }
      }
      status.loaded = true;
      status.error = "";
      changed();
    } catch (err) {
      if (err instanceof AuthError) return onAuthError(err);
      status.error = t("Could not load alerts: {error}", { error: err.message });
    } finally {
      reloading = null;
      statusChanged();
    }
    return undefined;
  }

  /** @param {string} name @param {any} data */
  function onEvent(name, data) {
    status.lastHeard = Date.now();
    if (name === "ready") {
      Object.assign(status, { stream: "live", database: data.database, bus: data.bus,
        parts: data.parts || {} });
      reload();
    } else if (name === "alert") {
      applyAlert(data, true);
    } else if (name === "pending") {
      applyPending(data);
    } else if (name === "status") {
      const back = data.database && !status.database;
      Object.assign(status, { database: data.database, bus: data.bus });
      if (back) reload();  // changes made while the database was away were not pushed
    } else if (name === "parts") {
      status.parts = data;  // every part's last state: {"pipeline": {up, since, reason}}
    } else if (name === "resync") {
      reload();
    }
    statusChanged();
  }

  /** @returns {Item[]} */
  function items() {
    const list = [...alerts.values()].map(alertItem);
    for (const { event } of pending.values()) list.push(pendingItem(event));
    return list.sort(compareItems);
  }

  function reconnectIfVisible() {
    if (stream && document.visibilityState === "visible") stream.reconnectNow();
  }

  return {
    start() {
      stream = openAlertStream({
        onEvent,
        onDown(err) {
          status.stream = "down";
          status.error = err.message;
          statusChanged();
        },
        onClosed(err) {
          status.stream = "closed";
          status.error = err.message;
          statusChanged();
        },
        onAuthError,
      });
      safetyTimer = setInterval(reload, SAFETY_RELOAD_MS);
      document.addEventListener("visibilitychange", reconnectIfVisible);
      window.addEventListener("online", reconnectIfVisible);
    },
    stop() {
      if (stream) stream.stop();
      stream = null;
      clearInterval(safetyTimer);
      document.removeEventListener("visibilitychange", reconnectIfVisible);
      window.removeEventListener("online", reconnectIfVisible);
      alerts.clear();
      pending.clear();
    },
    items,
    applyAlert,
    reload,
    status: () => ({ ...status }),
  };
}
