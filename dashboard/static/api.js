// @ts-check
// The session (token in sessionStorage) and authenticated JSON requests to /api/v1; on a wall
// display, the display credential (localStorage) that renews the session by itself.

import { lang, t } from "./i18n.js";
import { noteServerClock } from "./time.js";

export const API = "/api/v1";
const SESSION_KEY = "eldercare.session";
const DISPLAY_KEY = "eldercare.display";

/**
 * The answer of POST /auth/token, kept for the tab's lifetime.
 * @typedef {object} Session
 * @property {string} access_token
 * @property {string} username
 * @property {string} role
 * @property {string | null} [full_name]
 * @property {string | null} [site_id]
 * @property {boolean} [must_change_password] only "My account" works until it is changed
 * @property {boolean} [totp_enrolment_required] only "My account" works until enrolled
 * @property {number} [expires_in] seconds the token lives (a display renews before)
 * @property {number} [display_id] set on a wall display's session
 * @property {string} [site_timezone] a wall display's site zone (its times are shown in it)
 * @property {string} [language] the person's language (BCP 47)
 * @property {boolean} [language_chosen] chosen by them (the pages follow it) or the browser's
 */
/**
 * What a wall display keeps in localStorage (POST /displays answered it once).
 * @typedef {object} DisplayCredential
 * @property {number} id
 * @property {string} name
 * @property {string} secret exchanged at POST /displays/session for a short-lived token
 * @property {string} [site_timezone] the site's zone, for the lost state before a session
 */

/** The password was right; the account also needs its one-time code (TOTP). */
export class SecondFactorNeeded extends Error {}

/** The session has ended or never began: back to the login form. */
export class AuthError extends Error {}

/** This wall display was switched off (or is unknown): it must be set up again. */
export class SwitchedOff extends AuthError {
  /** @param {string} message @param {string | null} by who switched it off */
  constructor(message, by) {
    super(message);
    this.by = by;
  }
}

/** The server refused a request; `status` is the HTTP status. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {number} status
   * @param {any} [body] the parsed answer (field errors of a 422 are in `body.errors`)
   */
  constructor(message, status, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// --- session -----------------------------------------------------------------------

/** @returns {Session | null} */
export function loadSession() {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    const session = raw ? JSON.parse(raw) : null;
    return session && session.access_token ? session : null;
  } catch {
    return null;
  }
}

/** @param {Session} session */
export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

// --- wall display ------------------------------------------------------------------

/** @returns {DisplayCredential | null} this screen's display credential, if it is one */
export function loadDisplay() {
  try {
    const raw = localStorage.getItem(DISPLAY_KEY);
    const display = raw ? JSON.parse(raw) : null;
    return display && display.secret ? display : null;
  } catch {
    return null;
  }
}

/** @param {DisplayCredential} display */
export function saveDisplay(display) {
  localStorage.setItem(DISPLAY_KEY, JSON.stringify(display));
}

export function clearDisplay() {
  localStorage.removeItem(DISPLAY_KEY);
}

/** @type {Promise<Session> | null} */
let renewing = null;

/**
 * Exchange the display secret for a fresh access token and keep it as the session
 * (concurrent callers share one exchange). Throws SwitchedOff when the display may no longer
 * sign in, a plain Error when the server cannot be reached (try again later).
 * @returns {Promise<Session>}
 */
export function renewDisplaySession() {
  if (!renewing) {
    renewing = exchangeDisplaySecret().finally(() => { renewing = null; });
  }
  return renewing;
}

/** @returns {Promise<Session>} */
async function exchangeDisplaySecret() {
  const display = loadDisplay();
  if (!display) throw new AuthError(t("Please log in."));
  let resp;
  try {
    resp = await fetch(API + "/displays/session", {
      method: "POST", cache: "no-store",
      headers: { "Content-Type": "application/json", "Accept-Language": lang },
      body: JSON.stringify({ secret: display.secret }),
    });
  } catch (err) {
    throw networkError(err);
  }
  noteServerClock(resp);
  if (resp.status === 403 && resp.headers.get("X-Display-State") === "switched_off") {
    const body = await parsedOrNull(resp);
    throw new SwitchedOff(messageOf(resp, body), body ? body.revoked_by : null);
  }
  if (!resp.ok) throw new ApiError(await detailOf(resp), resp.status);
  const session = await bodyOf(resp);
  if (!session) throw new Error(t("The server sent an empty answer; retrying."));
  saveSession(session);
  return session;
}

// --- HTTP ----------------------------------------------------------------------------

/**
 * A response body is read exactly once, as text: an empty body (204, 205, or an answer
 * that a proxy or a restarting server cut to nothing) is `null`, never a JSON parse error.
 * @param {Response} resp
 * @returns {Promise<any>}
 */
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
    throw new ApiError(t("The server sent an unreadable answer (HTTP {status})",
      { status: resp.status }), resp.status);
  }
}

/**
 * The server's `detail` message, or a description of the status.
 * @param {Response} resp
 * @returns {Promise<string>}
 */
export async function detailOf(resp) {
  return messageOf(resp, await parsedOrNull(resp));
}

/** @param {Response} resp @returns {Promise<any>} the parsed body, null if not JSON */
async function parsedOrNull(resp) {
  try {
    return await bodyOf(resp);
  } catch {
    return null;
  }
}

/** @param {Response} resp @param {any} body @returns {string} */
function messageOf(resp, body) {
  if (body && typeof body.detail === "string") return body.detail;
  return t("The server answered {status} {reason}",
    { status: resp.status, reason: resp.statusText }).trim();
}

/**
 * What to tell the user about a failed fetch.
 * @param {any} err
 * @returns {Error}
 */
export function networkError(err) {
  if (err instanceof AuthError || err instanceof ApiError) return err;
  if (err && err.name === "AbortError") return err;
  return new Error(t("Cannot reach the server. Check the network connection; retrying."));
}

/**
 * api("/alerts") or api("/alerts/1/ack", {method: "POST", body: {...}}) -> parsed JSON,
 * or null when the answer has no body.
 * @param {string} path
 * @param {{method?: string, body?: unknown}} [options]
 * @returns {Promise<any>}
 */
export async function api(path, { method = "GET", body } = {}) {
  try {
    return await request(path, method, body);
  } catch (err) {
    // A wall display never logs out: a refused token is renewed with the display secret
    // and the request made once more.
    if (!(err instanceof AuthError) || err instanceof SwitchedOff || !loadDisplay()) throw err;
    await renewDisplaySession();
    return request(path, method, body);
  }
}

/**
 * One authenticated request (see `api`).
 * @param {string} path
 * @param {string} method
 * @param {unknown} body
 * @returns {Promise<any>}
 */
async function request(path, method, body) {
  const session = loadSession();
  if (!session) throw new AuthError(t("Please log in."));
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${session.access_token}`, Accept: "application/json",
    "Accept-Language": lang };
  /** @type {RequestInit} */
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
  if (!resp.ok) {
    const parsed = await parsedOrNull(resp);
    throw new ApiError(messageOf(resp, parsed), resp.status, parsed);
  }
  return bodyOf(resp);
}

/**
 * Log in: POST /auth/token (with the one-time code when the account has a second factor).
 * @param {string} username
 * @param {string} password
 * @param {string} [totp]
 * @returns {Promise<Session>}
 */
export async function requestToken(username, password, totp = "") {
  let resp;
  const form = new URLSearchParams({ username, password });
  if (totp) form.set("totp", totp);
  try {
    resp = await fetch(API + "/auth/token", {
      method: "POST", body: form, cache: "no-store", headers: { "Accept-Language": lang } });
  } catch (err) {
    throw networkError(err);
  }
  if (resp.status === 401 && resp.headers.get("X-Second-Factor") === "totp") {
    throw new SecondFactorNeeded(await detailOf(resp));
  }
  if (!resp.ok) throw new Error(await detailOf(resp));
  const token = await bodyOf(resp);
  if (!token) throw new Error(t("The server sent an empty answer; please try again."));
  return token;
}

/**
 * End the session on the server too (POST /auth/logout), so the token stops working at
 * once and not only in this tab; after a 401 it is already over and this is a no-op.
 */
export function endSession() {
  const session = loadSession();
  if (!session) return;
  fetch(API + "/auth/logout", {
    method: "POST",
    headers: { Authorization: `Bearer ${session.access_token}` },
    cache: "no-store",
    keepalive: true,
  }).catch(() => {});
}
