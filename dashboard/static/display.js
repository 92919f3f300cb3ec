// @ts-check
// Wall display mode of the duty screen (docs/dashboard.md, "Wall displays"). A duty officer
// sets the screen up once ("Make this a wall display"); from then on the screen holds a
// display secret (localStorage) and renews its own short-lived session with it (api.js
// renewDisplaySession). It never shows the login form: on any trouble (token refused,
// network lost, server restarting) it shows "Connection lost since …" in the site's time
// over the last known alerts and keeps retrying with backoff until it is back. Only a
// display that was switched off says so, with the way to set it up again.
// Officers also see the displays of their site here and can switch one off.

import {
  SwitchedOff, api, clearDisplay, clearSession, endSession, loadDisplay, loadSession,
  renewDisplaySession, saveDisplay,
} from "./api.js";
import { $, $button, $input, ageSpan, el } from "./dom.js";
import { t } from "./i18n.js";
import { siteTime } from "./time.js";

/** @typedef {import("./api.js").Session} Session */
/**
 * A display as GET /displays lists it.
 * @typedef {object} Display
 * @property {number} id
 * @property {string} name
 * @property {string} site_id
 * @property {string} created_by
 * @property {string | null} last_seen_at
 * @property {string | null} revoked_at
 * @property {string | null} revoked_by
 */

const LOST_AFTER_MS = 5000;  // a quick reconnect is not "lost"
const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 60000;
const DISPLAYS_MS = 30000;
const SETUP_ROLES = new Set(["duty_officer", "admin"]);

/** @returns {boolean} whether this screen is a wall display */
export function isDisplay() {
  return loadDisplay() !== null;
}

/** The page in display mode or not (no Log out button; the lost overlay may show). */
export function markDisplayMode(/** @type {boolean} */ on) {
  document.body.classList.toggle("display-mode", on);
}

/** @returns {string} the display's site zone (times are shown in it) */
function siteZone() {
  const session = loadSession();
  const display = loadDisplay();
  return (session && session.site_timezone) || (display && display.site_timezone) || "UTC";
}

/**
 * Show or hide "Connection lost since …" (the feed or the session down since `downSince`).
 * @param {number} downSince milliseconds since the epoch, or 0 when all is well
 */
export function paintLost(downSince) {
  const lost = isDisplay() && downSince > 0 && Date.now() - downSince > LOST_AFTER_MS;
  $("display-lost").hidden = !lost;
  if (lost) {
    $("display-lost-title").textContent = t("Connection lost since {time}",
      { time: siteTime(downSince, siteZone()) });
  }
}

/** @type {ReturnType<typeof setTimeout> | null} */
let retryTimer = null;

/**
 * Renew the display's session until it works, then `onSession(session)`; meanwhile the app
 * view shows the lost state over what it showed. A switched-off display stops trying.
 * @param {(session: Session) => void} onSession
 * @param {number} since when the trouble began (ms)
 * @param {() => void} onSwitchedOff the page stops its feed and timers
 */
export function recover(onSession, since, onSwitchedOff) {
  if (retryTimer !== null) return;  // already trying
  let wait = RETRY_MIN_MS;
  const attempt = async () => {
    retryTimer = null;
    try {
      const session = await renewDisplaySession();
      rememberZone(session);
      onSession(session);
    } catch (err) {
      if (err instanceof SwitchedOff) {
        onSwitchedOff();
        showSwitchedOff(err.message);
        return;
      }
      $("login-view").hidden = true;
      $("app-view").hidden = false;
      paintLost(since);
      wait = Math.min(RETRY_MAX_MS, wait * 2);
      retryTimer = setTimeout(attempt, wait * (0.75 + Math.random() / 2));
    }
  };
  retryTimer = setTimeout(attempt, 0);
}

/** Keep the site's zone with the credential, for the lost state before any session. */
function rememberZone(/** @type {Session} */ session) {
  const display = loadDisplay();
  if (display && session.site_timezone && display.site_timezone !== session.site_timezone) {
    saveDisplay({ ...display, site_timezone: session.site_timezone });
  }
}

/** @type {ReturnType<typeof setInterval> | null} */
let renewTimer = null;

/**
 * Renew the token at half its life, so requests rarely meet a refused one (they renew
 * and retry when they do).
 * @param {Session} session
 */
export function keepRenewed(session) {
  if (renewTimer !== null) clearInterval(renewTimer);
  const lifeMs = (session.expires_in || 3600) * 1000;
  renewTimer = setInterval(() => {
    renewDisplaySession().then(rememberZone).catch(() => {});  // the next request retries
  }, Math.max(10000, lifeMs / 2));
}

/** Stop renewing (the display was switched off). */
function stopRenewing() {
  if (renewTimer !== null) clearInterval(renewTimer);
  renewTimer = null;
}

/**
 * "This display was switched off by … — set it up again", with the setup button.
 * @param {string} message the server's sentence (who, when)
 */
export function showSwitchedOff(message) {
  stopRenewing();
  $("app-view").hidden = true;
  $("login-view").hidden = true;
  $("display-off").hidden = false;
  $("display-off-message").textContent = message;
}

/** "Set it up again": forget the credential and let an officer log in on this screen. */
function setUpAgain() {
  clearDisplay();
  clearSession();
  markDisplayMode(false);
  location.reload();
}

// --- setting a display up, and the officers' list ---------------------------------------

/**
 * Wire "Make this a wall display" (officers) and "Set it up again" (a switched-off display).
 * @param {() => Session | null} current the page's session
 */
export function wireDisplaySetup(current) {
  $button("display-off-button").addEventListener("click", setUpAgain);
  $button("display-setup-button").addEventListener("click", () => {
    const admin = current()?.role === "admin";  // an administrator names the site
    $("display-site-label").hidden = !admin;
    $input("display-site").hidden = !admin;
    $("display-setup").hidden = false;
    $input("display-name").focus();
  });
  $button("display-setup-cancel").addEventListener("click", () => {
    $("display-setup").hidden = true;
  });
  $("display-setup").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $input("display-name").value.trim();
    const site = $input("display-site").value.trim();
    try {
      const body = site && current()?.role === "admin" ? { name, site_id: site } : { name };
      /** @type {{id: number, name: string, secret: string}} */
      const made = await api("/displays", { method: "POST", body });
      saveDisplay({ id: made.id, name: made.name, secret: made.secret });
      endSession();  // the officer's own session does not stay on the wall
      clearSession();
      location.reload();  // starts again as the display
    } catch (err) {
      $("display-setup-message").textContent = err.message;
    }
  });
  new MutationObserver(() => followSession(current()))
    .observe($("app-view"), { attributes: true, attributeFilter: ["hidden"] });
  followSession(current());
}

/** @type {ReturnType<typeof setInterval> | null} */
let listTimer = null;

/** Officers see the setup button and their site's displays; others do not. */
function followSession(/** @type {Session | null} */ session) {
  const shown = !$("app-view").hidden && session !== null && SETUP_ROLES.has(session.role);
  $("display-setup-button").hidden = !shown;
  $("displays-panel").hidden = !shown;
  if (!shown) $("display-setup").hidden = true;
  if (shown && listTimer === null) {
    refreshDisplays();
    listTimer = setInterval(refreshDisplays, DISPLAYS_MS);
  } else if (!shown && listTimer !== null) {
    clearInterval(listTimer);
    listTimer = null;
    $("displays-list").replaceChildren();
  }
}

async function refreshDisplays() {
  try {
    /** @type {Display[]} */
    const displays = await api("/displays");
    $("displays-list").replaceChildren(...displays.map(displayLine));
    $("displays-empty").hidden = displays.length > 0;
    $("displays-message").textContent = "";
  } catch (err) {
    $("displays-message").textContent = err.message;
  }
}

/** @param {Display} display @returns {HTMLLIElement} */
function displayLine(display) {
  const state = display.revoked_at
    ? el("span", { className: "state-bad" }, t("Switched off by"), " · ",
      el("span", { translate: false }, display.revoked_by || ""))
    : el("span", { className: "state-ok" }, t("On"));
  const seen = display.last_seen_at ? ageSpan(display.last_seen_at, "muted") : null;
  const off = display.revoked_at ? null : el("button", {
    type: "button", className: "secondary", dataset: { displayId: String(display.id) },
    onclick: () => switchOff(display),
  }, t("Switch off"));
  return el("li", { className: "display-line", dataset: { displayId: String(display.id) } },
    el("span", { className: "display-line-name", translate: false }, display.name), state, seen,
    off);
}

/** @param {Display} display */
async function switchOff(display) {
  try {
    await api(`/displays/${display.id}/revoke`, { method: "POST" });
  } catch (err) {
    $("displays-message").textContent = err.message;
  }
  refreshDisplays();
}
