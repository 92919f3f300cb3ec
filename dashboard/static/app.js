// Eldercare duty screen. Vanilla JS, no dependencies.
//
// Structure:
//   session*      token kept in sessionStorage (gone when the tab closes)
//   api()         authenticated fetch against /api/v1
//   startAlertFeed(onAlerts, onError) -> stop()
//                 THE data source for open alerts. Today it polls every 2 s; a live
//                 (SSE) feed can replace this one function without touching rendering.
//   render*()     DOM updates; data is only ever inserted as text, never as HTML.
"use strict";

(() => {
  const API = "/api/v1";
  const POLL_MS = 2000;
  const RESIDENTS_MS = 10000;
  const STALE_MS = 10000;
  const LOW_BATTERY = 20;
  const SESSION_KEY = "eldercare.session";

  const SEVERITY_RANK = { critical: 0, urgent: 1, high: 2, warning: 3, info: 4 };
  const TYPE_LABELS = {
    sos: "SOS call",
    fall: "Fall detected",
    bed_exit: "Out of bed",
    no_return_to_bed: "Not back in bed",
    low_battery: "Low battery",
    device_offline: "Device offline",
    tamper: "Tamper",
    abnormal_vitals: "Abnormal vital signs",
  };
  const ROLE_LABELS = {
    admin: "Administrator",
    duty_officer: "Duty officer",
    care_worker: "Care worker",
    family: "Family",
  };
  const DEVICE_LABELS = { bed_sensor: "Bed sensor", call_button: "Call button" };

  const $ = (id) => document.getElementById(id);

  const state = {
    session: null,
    alerts: [],
    knownAlertIds: null, // null until the first load, so old alerts are not "announced"
    residents: new Map(),
    lastUpdate: 0,
    clockOffsetMs: 0,
    stopFeed: null,
    residentsTimer: null,
    tickTimer: null,
  };

  class AuthError extends Error {}

  // --- session ---------------------------------------------------------------

  function loadSession() {
    try {
      const raw = sessionStorage.getItem(SESSION_KEY);
      return raw ? JSON.parse(raw) : null;
    } catch {
      return null;
    }
  }

  function saveSession(session) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  }

  function clearSession() {
    sessionStorage.removeItem(SESSION_KEY);
  }

  // --- HTTP --------------------------------------------------------------------

  async function detailOf(resp) {
    try {
      const body = await resp.json();
      if (typeof body.detail === "string") return body.detail;
    } catch {
      /* not JSON */
    }
    return `The server answered ${resp.status} ${resp.statusText}`.trim();
  }

  function noteServerClock(resp) {
    // Ages ("3 min ago") use the server's clock when the screen's clock is clearly off.
    const date = Date.parse(resp.headers.get("Date") || "");
    if (Number.isNaN(date)) return;
    const offset = date - Date.now();
    state.clockOffsetMs = Math.abs(offset) > 5000 ? offset : 0;
  }

  function now() {
    return Date.now() + state.clockOffsetMs;
  }

  async function api(path) {
    const resp = await fetch(API + path, {
      headers: {
        Authorization: `Bearer ${state.session.access_token}`,
        Accept: "application/json",
      },
      cache: "no-store",
    });
    noteServerClock(resp);
    if (resp.status === 401) throw new AuthError(await detailOf(resp));
    if (!resp.ok) throw new Error(await detailOf(resp));
    return resp.json();
  }

  async function requestToken(username, password) {
    const resp = await fetch(API + "/auth/token", {
      method: "POST",
      body: new URLSearchParams({ username, password }),
      cache: "no-store",
    });
    if (!resp.ok) throw new Error(await detailOf(resp));
    return resp.json();
  }

  // --- data source -------------------------------------------------------------

  // Calls onAlerts(list of open alerts) after every successful update and onError(error)
  // on failure; returns a function that stops the feed. Replace with an SSE-backed
  // implementation of the same contract when the live stream exists.
  function startAlertFeed(onAlerts, onError) {
    let stopped = false;
    let timer = null;
    async function poll() {
      try {
        const alerts = await api("/alerts?status=open&limit=500");
        if (!stopped) onAlerts(alerts);
      } catch (err) {
        if (!stopped) onError(err);
      } finally {
        if (!stopped) timer = setTimeout(poll, POLL_MS);
      }
    }
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  // --- formatting ----------------------------------------------------------------

  function typeLabel(type) {
    if (TYPE_LABELS[type]) return TYPE_LABELS[type];
    const words = String(type).replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function ago(iso) {
    const seconds = Math.max(0, Math.round((now() - Date.parse(iso)) / 1000));
    if (seconds < 45) return "just now";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) {
      const rest = minutes % 60;
      return rest ? `${hours} h ${rest} min ago` : `${hours} h ago`;
    }
    const days = Math.floor(hours / 24);
    return days === 1 ? "1 day ago" : `${days} days ago`;
  }

  function clockTime(ms, withSeconds = false) {
    const options = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (withSeconds) options.second = "2-digit";
    return new Date(ms).toLocaleTimeString([], options);
  }

  // el("p", {className: "x"}, "text", childNode) -> element; strings become text nodes.
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key in node) node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function ageSpan(iso, className) {
    return el("span", { className, dataset: { since: iso } }, ago(iso));
  }

  // --- rendering: alerts --------------------------------------------------------

  function sortAlerts(alerts) {
    // Most severe first; within a severity, whoever has waited longest first.
    return [...alerts].sort((a, b) =>
      (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) ||
      Date.parse(a.opened_at) - Date.parse(b.opened_at));
  }

  function renderAlerts() {
    const alerts = sortAlerts(state.alerts);
    const list = $("alert-list");
    list.replaceChildren(...alerts.map(alertCard));
    $("no-alerts").hidden = alerts.length > 0;
    const pill = $("alert-count");
    pill.textContent = String(alerts.length);
    pill.classList.toggle("has-critical", alerts.some((a) => a.severity === "critical"));
    document.title = alerts.length
      ? `(${alerts.length}) Eldercare duty screen`
      : "Eldercare duty screen";
  }

  function alertCard(alert) {
    const resident = state.residents.get(alert.resident_id);
    const where = [resident && resident.address, `site ${alert.site_id}`]
      .filter(Boolean).join(" · ");
    return el(
      "li",
      {
        className: `alert alert--${alert.severity}`,
        dataset: { alertId: String(alert.id) },
        "aria-label": `${alert.severity} alert: ${typeLabel(alert.type)}, ${alert.resident_name}`,
      },
      el("div", { className: "alert-head" },
        el("span", { className: "alert-type" }, typeLabel(alert.type)),
        el("span", { className: "severity" }, alert.severity.toUpperCase())),
      el("div", { className: "alert-resident" }, alert.resident_name),
      el("div", { className: "alert-age" },
        ageSpan(alert.opened_at, ""), ` · at ${clockTime(Date.parse(alert.opened_at))}`),
      el("div", { className: "alert-meta" }, where),
      alert.count > 1 && el("div", { className: "alert-meta" },
        `Repeated ${alert.count}×, last `, ageSpan(alert.last_seen, "")),
      alert.device_id && el("div", { className: "alert-meta" }, `Device ${alert.device_id}`),
    );
  }

  function announceNewAlerts(alerts) {
    const ids = new Set(alerts.map((a) => a.id));
    if (state.knownAlertIds !== null) {
      const fresh = alerts.filter((a) => !state.knownAlertIds.has(a.id));
      if (fresh.length) {
        $("announcer").textContent = fresh
          .map((a) => `New ${a.severity} alert: ${typeLabel(a.type)}, ${a.resident_name}.`)
          .join(" ");
      }
    }
    const changed = state.knownAlertIds === null || ids.size !== state.knownAlertIds.size ||
      [...ids].some((id) => !state.knownAlertIds.has(id));
    state.knownAlertIds = ids;
    return changed;
  }

  // --- rendering: residents ------------------------------------------------------

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
      el("span", { className: "device-name" }, DEVICE_LABELS[device.type] || device.type),
      status, battery, seen && el("span", { className: "muted" }, "seen ", seen));
  }

  function renderResidents() {
    const grid = $("resident-grid");
    const residents = [...state.residents.values()];
    grid.replaceChildren(...residents.map((r) => el(
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

  async function refreshResidents() {
    try {
      const residents = await api("/residents");
      state.residents = new Map(residents.map((r) => [r.id, r]));
      renderResidents();
      renderAlerts(); // addresses come from the residents list
    } catch (err) {
      if (err instanceof AuthError) return logout(err.message);
      $("residents-message").textContent = `Could not load residents: ${err.message}`;
    }
  }

  // --- status, clock, ages ---------------------------------------------------------

  function tick() {
    $("clock").textContent = clockTime(now());
    for (const span of document.querySelectorAll("[data-since]")) {
      span.textContent = ago(span.dataset.since);
    }
    const banner = $("stale-banner");
    const stale = state.lastUpdate && Date.now() - state.lastUpdate > STALE_MS;
    const never = !state.lastUpdate;
    banner.hidden = !stale;
    if (stale) {
      banner.textContent = `Connection lost: alerts may be out of date (last update ${
        clockTime(state.lastUpdate, true)}). Retrying…`;
    }
    const status = $("feed-status");
    status.classList.toggle("live", !stale && !never);
    status.classList.toggle("down", Boolean(stale));
    if (!never) status.textContent = `Updated ${clockTime(state.lastUpdate, true)}`;
  }

  // --- screens -----------------------------------------------------------------------

  function showLogin(message = "") {
    $("duty-view").hidden = true;
    $("login-view").hidden = false;
    $("login-message").textContent = message;
    $("password").value = "";
    $("username").focus();
  }

  function showDuty() {
    const s = state.session;
    $("login-view").hidden = true;
    $("duty-view").hidden = false;
    const role = ROLE_LABELS[s.role] || s.role;
    const name = s.full_name || s.username;
    $("who").textContent = s.site_id ? `${name} · ${role} · site ${s.site_id}` : `${name} · ${role}`;
    state.lastUpdate = 0;
    state.knownAlertIds = null;
    tick();
    state.tickTimer = setInterval(tick, 1000);
    state.stopFeed = startAlertFeed(
      (alerts) => {
        state.alerts = alerts;
        state.lastUpdate = Date.now();
        const changed = announceNewAlerts(alerts);
        renderAlerts();
        tick();
        if (changed) refreshResidents(); // open-alert counts moved
      },
      (err) => {
        if (err instanceof AuthError) logout(err.message);
        else $("feed-status").textContent = `Update failed: ${err.message}`;
      },
    );
    state.residentsTimer = setInterval(refreshResidents, RESIDENTS_MS);
  }

  function stopAll() {
    if (state.stopFeed) state.stopFeed();
    clearInterval(state.residentsTimer);
    clearInterval(state.tickTimer);
    state.stopFeed = null;
    state.alerts = [];
    state.residents = new Map();
    $("alert-list").replaceChildren();
    $("resident-grid").replaceChildren();
  }

  function logout(message = "") {
    stopAll();
    clearSession();
    state.session = null;
    document.title = "Eldercare duty screen";
    showLogin(message);
  }

  async function onLogin(event) {
    event.preventDefault();
    const username = $("username").value.trim();
    const password = $("password").value;
    if (!username || !password) {
      $("login-message").textContent = "Enter your username and password.";
      return;
    }
    const button = $("login-button");
    button.disabled = true;
    button.textContent = "Logging in…";
    try {
      const token = await requestToken(username, password);
      state.session = token;
      saveSession(token);
      $("login-message").textContent = "";
      showDuty();
    } catch (err) {
      $("login-message").textContent = err.message;
      $("password").value = "";
      $("password").focus();
    } finally {
      button.disabled = false;
      button.textContent = "Log in";
    }
  }

  function init() {
    $("login-form").addEventListener("submit", onLogin);
    $("logout-button").addEventListener("click", () => logout("You have logged out."));
    state.session = loadSession();
    if (state.session && state.session.access_token) showDuty();
    else showLogin();
  }

  init();
})();
