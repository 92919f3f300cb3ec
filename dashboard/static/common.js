// Shared code of the duty screen (app.js) and the care worker's phone page (worker.js).
// Vanilla JS, no dependencies; data is only ever inserted as text, never as HTML.
//
//   session*, api()        token in sessionStorage; authenticated JSON requests
//   openAlertStream()      reads GET /api/v1/alerts/stream with fetch() (the token travels
//                          in the Authorization header, never in a URL), reconnects with backoff
//   createLiveAlerts()     the open/acknowledged alerts plus "not yet saved" bus alerts,
//                          kept current by the stream and reloaded on every (re)connect
//   alertActions()         Acknowledge / Resolve controls for one alert card
//   createAlarm()          optional beep for new critical alerts (off until switched on)
"use strict";

(() => {
  const API = "/api/v1";
  const SESSION_KEY = "eldercare.session";
  const SOUND_KEY = "eldercare.sound";
  const ACTIVE_QUERY = "/alerts?status=open&status=acknowledged&limit=500";
  const SAFETY_RELOAD_MS = 60000;   // the stream is primary; this only repairs drift
  const PENDING_GRACE_MS = 120000;  // an unsaved alert the database never stored is dropped
  const MAX_RETRY_MS = 30000;
  const ACTING_ROLES = new Set(["admin", "duty_officer", "care_worker"]);

  const SEVERITY_RANK = { critical: 0, urgent: 1, high: 2, warning: 3, info: 4 };
  const TYPE_LABELS = {
    sos: "SOS call",
    fall: "Fall detected",
    bed_exit_no_return: "Not back in bed",
    heart_rate_low: "Heart rate low",
    heart_rate_high: "Heart rate high",
    respiration_low: "Breathing slow",
    respiration_high: "Breathing fast",
    apnea: "Breathing pause",
    not_up: "Not up this morning",
    long_absence: "Long absence",
    device_offline: "Device offline",
    low_battery: "Low battery",
    test_overdue: "Button test overdue",
  };
  const ROLE_LABELS = {
    admin: "Administrator",
    duty_officer: "Duty officer",
    care_worker: "Care worker",
    family: "Family",
  };
  const OUTCOMES = [
    ["false_alarm", "False alarm"],
    ["assisted_at_home", "Helped at home"],
    ["ambulance_called", "Ambulance called"],
    ["hospital", "Taken to hospital"],
    ["other", "Other (describe in the note)"],
  ];

  const $ = (id) => document.getElementById(id);
  let clockOffsetMs = 0;

  class AuthError extends Error {}

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // --- session -----------------------------------------------------------------------

  function loadSession() {
    try {
      const raw = sessionStorage.getItem(SESSION_KEY);
      const session = raw ? JSON.parse(raw) : null;
      return session && session.access_token ? session : null;
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

  // --- HTTP ----------------------------------------------------------------------------

  // A response body is read exactly once, as text: an empty body (204, 205, or an answer
  // that a proxy or a restarting server cut to nothing) is `null`, never a JSON parse error.
  async function bodyOf(resp) {
    let text;
    try {
      text = await resp.text();
    } catch (err) {
      throw networkError(err);
    }
    if (!text.trim()) return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(`The server sent an unreadable answer (HTTP ${resp.status})`,
        resp.status);
    }
  }

  async function detailOf(resp) {
    let body = null;
    try {
      body = await bodyOf(resp);
    } catch {
      /* not JSON */
    }
    if (body && typeof body.detail === "string") return body.detail;
    return `The server answered ${resp.status} ${resp.statusText}`.trim();
  }

  function networkError(err) {
    if (err instanceof AuthError || err instanceof ApiError) return err;
    if (err && err.name === "AbortError") return err;
    return new Error("Cannot reach the server. Check the network connection; retrying.");
  }

  function noteServerClock(resp) {
    // Ages ("3 min ago") use the server's clock when this device's clock is clearly off.
    const date = Date.parse(resp.headers.get("Date") || "");
    if (Number.isNaN(date)) return;
    const offset = date - Date.now();
    clockOffsetMs = Math.abs(offset) > 5000 ? offset : 0;
  }

  function now() {
    return Date.now() + clockOffsetMs;
  }

  // api("/alerts") or api("/alerts/1/ack", {method: "POST", body: {...}}) -> parsed JSON,
  // or null when the answer has no body.
  async function api(path, { method = "GET", body } = {}) {
    const session = loadSession();
    if (!session) throw new AuthError("Please log in.");
    const headers = { Authorization: `Bearer ${session.access_token}`, Accept: "application/json" };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(API + path, init);
    } catch (err) {
      throw networkError(err);
    }
    noteServerClock(resp);
    if (resp.status === 401) throw new AuthError(await detailOf(resp));
    if (!resp.ok) throw new ApiError(await detailOf(resp), resp.status);
    return bodyOf(resp);
  }

  async function requestToken(username, password) {
    let resp;
    try {
      resp = await fetch(API + "/auth/token", {
        method: "POST",
        body: new URLSearchParams({ username, password }),
        cache: "no-store",
      });
    } catch (err) {
      throw networkError(err);
    }
    if (!resp.ok) throw new Error(await detailOf(resp));
    const token = await bodyOf(resp);
    if (!token) throw new Error("The server sent an empty answer; please try again.");
    return token;
  }

  // --- formatting ------------------------------------------------------------------------

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

  function ageSpan(iso, className = "") {
    return el("span", { className, dataset: { since: iso } }, ago(iso));
  }

  function refreshAges() {
    for (const span of document.querySelectorAll("[data-since]")) {
      span.textContent = ago(span.dataset.since);
    }
  }

  // Make `container`'s children exactly `nodes` (in order), moving only what is out of
  // place, so a half-filled form or a focused button survives live updates.
  function reconcile(container, nodes) {
    nodes.forEach((node, i) => {
      const at = container.children[i];
      if (at !== node) container.insertBefore(node, at || null);
    });
    while (container.children.length > nodes.length) container.lastElementChild.remove();
  }

  // --- the live stream -------------------------------------------------------------------

  // Parses a text/event-stream body; calls onMessage(event, data) and onBytes() per chunk.
  async function readEvents(body, onMessage, onBytes, onRetry) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let name = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onBytes();
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (let line of lines) {
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length) onMessage(name || "message", data.join("\n"));
          name = "";
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") name = value;
          else if (field === "data") data.push(value);
          else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
        }
      }
    }
  }

  // Keeps GET /alerts/stream open. handlers: onEvent(name, json), onDown(error),
  // onAuthError(error), onClosed(error) (the server closed it for good). Returns
  // {stop(), reconnectNow()}.
  function openAlertStream({ onEvent, onDown, onAuthError, onClosed }) {
    let stopped = false;
    let connected = false;
    let controller = null;
    let timer = null;
    let retryMs = 3000;
    let failures = 0;
    let heartbeatMs = 15000;
    let lastByte = Date.now();
    let farewell = null;  // the server's `close` event: {reason, action}

    function message(name, data) {
      let json;
      try {
        json = JSON.parse(data);
      } catch {
        return;
      }
      if (name === "ready") {
        failures = 0;
        if (json.heartbeat_s) heartbeatMs = json.heartbeat_s * 1000;
      }
      if (name === "close") farewell = json;
      onEvent(name, json);
    }

    // The server ended the stream and said what to do next: "login" (the session was
    // logged out, deactivated or expired: back to the login form), "stop" (too many live
    // streams for this account: reconnecting would only close another one), or reconnect.
    function ended() {
      const { reason = "", action = "reconnect" } = farewell || {};
      farewell = null;
      if (action === "login") {
        stopped = true;
        onAuthError(new AuthError(`Your session has ended (${reason}); please log in again.`));
        return true;
      }
      if (action === "stop") {
        stopped = true;
        onClosed(new Error(`The live feed was closed: ${reason}. Reload the page to use ` +
          "this screen again."));
        return true;
      }
      return false;
    }

    async function connect() {
      timer = null;
      controller = new AbortController();
      const session = loadSession();
      if (!session) return onAuthError(new AuthError("Please log in."));
      try {
        const resp = await fetch(API + "/alerts/stream", {
          headers: { Authorization: `Bearer ${session.access_token}`, Accept: "text/event-stream" },
          cache: "no-store",
          signal: controller.signal,
        });
        noteServerClock(resp);
        if (resp.status === 401) {
          stopped = true;
          return onAuthError(new AuthError(await detailOf(resp)));
        }
        if (!resp.ok) throw new ApiError(await detailOf(resp), resp.status);
        connected = true;
        lastByte = Date.now();
        await readEvents(resp.body, message, () => { lastByte = Date.now(); },
          (ms) => { retryMs = ms; });
        connected = false;
        if (ended()) return undefined;
        throw new Error("The live feed was closed by the server; reconnecting.");
      } catch (err) {
        connected = false;
        if (stopped) return undefined;
        failures += 1;
        onDown(err.name === "AbortError"
          ? new Error("The live feed stopped responding; reconnecting.") : networkError(err));
        const backoff = Math.min(MAX_RETRY_MS, retryMs * 2 ** Math.min(failures - 1, 4));
        timer = setTimeout(connect, backoff * (0.75 + Math.random() / 2));
      }
      return undefined;
    }

    // A connection that went silent (no heartbeat) is dropped and made again.
    const watchdog = setInterval(() => {
      if (connected && Date.now() - lastByte > heartbeatMs * 2 + 5000) controller.abort();
    }, 2000);

    function reconnectNow() {
      if (stopped || connected || timer === null) return;
      clearTimeout(timer);
      connect();
    }

    connect();
    return {
      stop() {
        stopped = true;
        clearInterval(watchdog);
        clearTimeout(timer);
        if (controller) controller.abort();
      },
      reconnectNow,
    };
  }

  // --- the live set of alerts --------------------------------------------------------------

  function isActive(alert) {
    return alert.status === "open" || alert.status === "acknowledged";
  }

  // A stored alert is the incident an unsaved bus alert announced: same uid, or (the store
  // keeps one open alert per resident and type) the same resident and type.
  function sameIncident(alert, event) {
    return (alert.uid && alert.uid === event.uid) || event.alert_id === alert.id ||
      (alert.resident_id === event.resident_id && alert.type === event.type);
  }

  function alertItem(a) {
    return { ...a, key: `a${a.id}`, pending: false };
  }

  function pendingItem(e) {
    return {
      key: `p${e.uid}`, pending: true, id: null, uid: e.uid, resident_id: e.resident_id,
      resident_name: null, site_id: e.site, device_id: e.device_id, type: e.type,
      severity: e.severity, status: "open", opened_at: e.at, last_seen: e.at, count: 1,
      assigned_to: null, acknowledged_by: null, acknowledged_at: null,
    };
  }

  function itemRank(item) {
    return [item.status === "open" ? 0 : 1, SEVERITY_RANK[item.severity] ?? 9,
      Date.parse(item.opened_at)];
  }

  function compareRanks(a, b) {
    for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  }

  function compareItems(a, b) {
    return compareRanks(itemRank(a), itemRank(b));
  }

  // handlers: onChange(), onStatus(status), onAuthError(error), onFresh(item).
  function createLiveAlerts({ onChange, onStatus, onAuthError, onFresh }) {
    const alerts = new Map();   // id -> alert (active only)
    const pending = new Map();  // uid -> {event, since}
    const status = { stream: "connecting", database: null, bus: null, parts: {}, lastHeard: 0,
      error: "", loaded: false };
    let stream = null;
    let safetyTimer = null;
    let reloading = null;       // events that arrived during a reload, re-applied after it

    function changed() { onChange(); }
    function statusChanged() { onStatus({ ...status }); }

    function fresh(item) {
      if (status.loaded) onFresh(item);
    }

    function dropPendingFor(alert) {
      for (const [uid, { event }] of pending) {
        if (sameIncident(alert, event)) pending.delete(uid);
      }
    }

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

    async function reload() {
      reloading = [];
      try {
        const list = await api(ACTIVE_QUERY);
        if (!Array.isArray(list)) throw new Error("the server sent no list; retrying");
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
        status.error = `Could not load alerts: ${err.message}`;
      } finally {
        reloading = null;
        statusChanged();
      }
      return undefined;
    }

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

    function items() {
      const list = [...alerts.values()].map(alertItem);
      for (const { event } of pending.values()) list.push(pendingItem(event));
      return list.sort(compareItems);
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

    function reconnectIfVisible() {
      if (stream && document.visibilityState === "visible") stream.reconnectNow();
    }
  }

  // --- actions -----------------------------------------------------------------------------

  function canAct(role) {
    return ACTING_ROLES.has(role);
  }

  // The controls under one alert card. `live` applies the answer at once (the stream
  // confirms it a moment later); onAuthError(error) when the session has ended.
  // Returns {root, update(item)}.
  function alertActions(live, { big = false, onAuthError }) {
    let item = null;
    const message = el("p", { className: "action-message", role: "alert" });
    const ack = el("button", { type: "button", className: big ? "big" : "" }, "Acknowledge");
    const toggle = el("button", { type: "button", className: big ? "big secondary" : "secondary",
      "aria-expanded": "false" }, "Resolve…");
    const form = resolveForm();
    const buttons = el("div", { className: "action-buttons" }, ack, toggle);
    const root = el("div", { className: "alert-actions" }, buttons, form.root, message);

    function say(text, kind = "error") {
      message.textContent = text;
      message.className = `action-message action-message--${kind}`;
    }

    async function run(button, label, request) {
      const before = button.textContent;
      button.disabled = true;
      button.textContent = label;
      say("");
      try {
        const updated = await request();
        if (updated) live.applyAlert(updated);
        else live.reload(); // done, but the answer carried no alert: fetch the list
        return true;
      } catch (err) {
        if (err instanceof AuthError) throw err;
        say(err.message);
        if (err.status === 409 || err.status === 404) live.reload();
        return false;
      } finally {
        button.disabled = false;
        button.textContent = before;
      }
    }

    ack.addEventListener("click", () => {
      run(ack, "Acknowledging…", () => api(`/alerts/${item.id}/ack`, { method: "POST" }))
        .catch(onAuthError);
    });
    toggle.addEventListener("click", () => {
      form.show(form.root.hidden);
      toggle.setAttribute("aria-expanded", String(!form.root.hidden));
      if (!form.root.hidden) form.focus();
    });
    form.onCancel = () => {
      form.show(false);
      toggle.setAttribute("aria-expanded", "false");
      toggle.focus();
    };
    form.onSubmit = async ({ outcome, note }) => {
      if (!outcome) return say("Choose an outcome first.");
      const ok = await run(form.submit, "Resolving…", () => api(`/alerts/${item.id}/resolve`, {
        method: "POST", body: { outcome, note: note || null },
      })).catch(onAuthError);
      if (ok) form.show(false);
      return undefined;
    };

    return {
      root,
      update(next) {
        item = next;
        const saved = !next.pending && next.id !== null;
        ack.hidden = !saved || next.status !== "open";
        toggle.hidden = !saved;
        if (!saved) form.show(false);
        buttons.hidden = !saved;
      },
    };
  }

  let formCount = 0;

  function resolveForm() {
    formCount += 1;
    const ids = { outcome: `resolve-outcome-${formCount}`, note: `resolve-note-${formCount}` };
    const select = el("select", { id: ids.outcome, required: true },
      el("option", { value: "" }, "Choose the outcome…"),
      ...OUTCOMES.map(([value, label]) => el("option", { value }, label)));
    const note = el("textarea", { id: ids.note, rows: 2, maxLength: 2000,
      placeholder: "What happened? (required for Other)" });
    const submit = el("button", { type: "submit" }, "Resolve alert");
    const cancel = el("button", { type: "button", className: "secondary" }, "Cancel");
    const root = el("form", { className: "resolve-form", hidden: true, noValidate: true },
      el("label", { htmlFor: ids.outcome }, "Outcome"), select,
      el("label", { htmlFor: ids.note }, "Note"), note,
      el("div", { className: "action-buttons" }, submit, cancel));
    const form = {
      root,
      submit,
      onSubmit: null,
      onCancel: null,
      show(visible) {
        root.hidden = !visible;
        if (!visible) {
          select.value = "";
          note.value = "";
        }
      },
      focus() { select.focus(); },
    };
    root.addEventListener("submit", (event) => {
      event.preventDefault();
      form.onSubmit({ outcome: select.value, note: note.value.trim() });
    });
    cancel.addEventListener("click", () => form.onCancel());
    return form;
  }

  // --- sound ---------------------------------------------------------------------------------

  // Optional beep for new critical alerts. Browsers only allow sound after a click or tap,
  // so it is off until switched on with `button` (the choice is remembered on this device).
  function createAlarm(button) {
    let enabled = localStorage.getItem(SOUND_KEY) === "on";
    let ctx = null;

    function context() {
      const AudioCtx = window.AudioContext || window.webkitAudioContext;
      if (!AudioCtx) return null;
      if (!ctx) ctx = new AudioCtx();
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      return ctx;
    }

    function beep() {
      const c = context();
      if (!c) return;
      const start = c.currentTime + 0.05;
      for (let i = 0; i < 3; i += 1) {
        const t = start + i * 0.45;
        const osc = c.createOscillator();
        const gain = c.createGain();
        osc.type = "square";
        osc.frequency.value = i === 1 ? 1046 : 880;
        gain.gain.setValueAtTime(0.0001, t);
        gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.35);
        osc.connect(gain).connect(c.destination);
        osc.start(t);
        osc.stop(t + 0.4);
      }
    }

    function render() {
      button.textContent = enabled ? "Sound: on" : "Sound: off";
      button.setAttribute("aria-pressed", String(enabled));
    }

    button.addEventListener("click", () => {
      enabled = !enabled;
      localStorage.setItem(SOUND_KEY, enabled ? "on" : "off");
      render();
      if (enabled) beep();
    });
    // Unlock audio with the first interaction after a reload (autoplay rules).
    document.addEventListener("pointerdown", () => { if (enabled) context(); }, { once: true });
    render();
    return { play() { if (enabled) beep(); } };
  }

  // --- login ---------------------------------------------------------------------------------

  // Wires the login form; calls onLoggedIn(session) after a successful login.
  function wireLogin(onLoggedIn) {
    $("login-form").addEventListener("submit", async (event) => {
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
        const session = await requestToken(username, password);
        saveSession(session);
        $("login-message").textContent = "";
        onLoggedIn(session);
      } catch (err) {
        $("login-message").textContent = err.message;
        $("password").value = "";
        $("password").focus();
      } finally {
        button.disabled = false;
        button.textContent = "Log in";
      }
    });
  }

  // Both pages: leave the login form for the page and start its live alert feed. The page's
  // `state` gets session, live and downSince; `page` has createLiveAlerts' onChange,
  // onStatus and onFresh, and logout(message), which a rejected session calls.
  function showApp(state, session, page) {
    state.session = session;
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("who").textContent = whoLine(session);
    state.downSince = 0;
    state.live = createLiveAlerts({
      onChange: page.onChange,
      onStatus: page.onStatus,
      onAuthError: (err) => page.logout(err.message),
      onFresh: page.onFresh,
    });
    state.live.start();
  }

  // Both pages: stop the feed and the clock, forget what was shown, back to the login form.
  // The page clears its own lists first.
  function leaveApp(state, message) {
    endSession();
    if (state.live) state.live.stop();
    clearInterval(state.tickTimer);
    state.live = null;
    state.me = null;
    state.cards.clear();
    state.residents = new Map();
    $("critical-banner").hidden = true;
    $("stale-banner").hidden = true;
    clearSession();
    showLogin(message);
  }

  // End the session on the server too (POST /auth/logout), so the token stops working at
  // once and not only in this tab; after a 401 it is already over and this is a no-op.
  function endSession() {
    const session = loadSession();
    if (!session) return;
    fetch(API + "/auth/logout", {
      method: "POST",
      headers: { Authorization: `Bearer ${session.access_token}` },
      cache: "no-store",
      keepalive: true,
    }).catch(() => {});
  }

  function showLogin(message = "") {
    $("app-view").hidden = true;
    $("login-view").hidden = false;
    $("login-message").textContent = message;
    $("password").value = "";
    $("username").focus();
  }

  // --- feed health: both pages show the same live / reconnecting / stale indicator ---------

  const STALE_MS = 10000;

  // Remember since when the stream has been down (on a page's `state.downSince`) and show
  // the stream's error above the alert list.
  function noteStreamStatus(state, status) {
    if (status.stream === "down" && !state.downSince) state.downSince = Date.now();
    if (status.stream === "live") state.downSince = 0;
    $("alerts-message").textContent = status.stream === "live" ? status.error : "";
  }

  // Paint the feed indicator and the stale banner; `texts` gives the page's wording.
  function paintFeed(status, downSince, texts) {
    const live = status.stream === "live";
    const closed = status.stream === "closed";  // for good: too many streams elsewhere
    const dbDown = live && status.database === false;
    const lost = !live && downSince && Date.now() - downSince > STALE_MS;
    const feed = $("feed-status");
    feed.classList.toggle("live", live && !dbDown);
    feed.classList.toggle("down", Boolean(dbDown || !live));
    feed.textContent = live ? texts.live(status, dbDown) : (closed ? "Feed closed"
      : (status.stream === "down" ? "Reconnecting…" : "Connecting…"));
    const banner = $("stale-banner");
    banner.hidden = !(lost || dbDown || closed);
    if (closed) banner.textContent = status.error;
    else if (lost) banner.textContent = texts.lost(status);
    else if (dbDown) banner.textContent = texts.dbDown;
    paintParts(status);
  }

  // "Pipeline down since 03:12 · Jobs down": the platform's parts that are not running
  // (gateway/presence.py). Shown only while the feed is live and the bus is up, the only
  // times these states are current.
  function partsDownText(status) {
    if (status.stream !== "live" || status.bus === false) return "";
    const down = Object.entries(status.parts || {}).filter(([, part]) => !part.up);
    return down.map(([name, part]) => {
      const label = name.charAt(0).toUpperCase() + name.slice(1).replace(/-/g, " ");
      const since = part.since ? ` since ${clockTime(Date.parse(part.since))}` : "";
      const why = part.reason === "stopped" ? " (stopped)" : "";
      return `${label} down${since}${why}`;
    }).join(" · ");
  }

  function paintParts(status) {
    const banner = $("parts-banner");
    if (!banner) return;
    const text = partsDownText(status);
    banner.hidden = !text;
    banner.textContent = text;
  }

  function whoLine(session) {
    const role = ROLE_LABELS[session.role] || session.role;
    const name = session.full_name || session.username;
    return session.site_id ? `${name} · ${role} · site ${session.site_id}` : `${name} · ${role}`;
  }

  // One alert card: an <li> with a body and, for staff who may act, the action buttons.
  // Created once per item key in `cards`, repainted on every update (duty screen and phone
  // page). opts: actions (alertActions options), fresh (highlight), name (resident), body.
  function alertCard(cards, live, role, item, opts) {
    let card = cards.get(item.key);
    if (!card) {
      const actions = canAct(role) ? alertActions(live, opts.actions) : null;
      const body = el("div", { className: "alert-body" });
      card = { root: el("li", {}, body, actions && actions.root), body, actions };
      cards.set(item.key, card);
    }
    const classes = ["alert", `alert--${item.severity}`, `alert--${item.status}`];
    if (item.pending) classes.push("alert--pending");
    if (opts.fresh) classes.push("alert--fresh");
    card.root.className = classes.join(" ");
    card.root.dataset.alertId = item.id === null ? "" : String(item.id);
    card.root.setAttribute("aria-label", `${item.severity} alert: ${typeLabel(item.type)}, ` +
      `${opts.name}${item.pending ? ", not yet saved" : `, ${item.status}`}`);
    card.body.replaceChildren(...opts.body.filter(Boolean));
    if (card.actions) card.actions.update(item);
    return card.root;
  }

  window.Eldercare = Object.freeze({
    $, el, ago, ageSpan, alertCard, api, canAct, clearSession, clockTime, createAlarm,
    createLiveAlerts, alertActions, compareItems, leaveApp, loadSession, noteStreamStatus, now,
    paintFeed, partsDownText, reconcile, showApp,
    refreshAges, showLogin, typeLabel, whoLine, wireLogin, AuthError, ApiError,
  });
})();
