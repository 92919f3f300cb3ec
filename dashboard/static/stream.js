// @ts-check
// The live feed client: keeps GET /api/v1/alerts/stream open with fetch() (the token
// travels in the Authorization header, never in a URL) and reconnects with backoff.

import {
  API, ApiError, AuthError, SwitchedOff, detailOf, loadDisplay, loadSession, networkError,
  renewDisplaySession,
} from "./api.js";
import { t } from "./i18n.js";
import { noteServerClock } from "./time.js";

const MAX_RETRY_MS = 30000;

/**
 * Parses a text/event-stream body; calls onMessage(event, data) per event, onBytes() per
 * chunk and onRetry(ms) for a `retry:` field.
 * @param {ReadableStream<Uint8Array>} body
 * @param {(name: string, data: string) => void} onMessage
 * @param {() => void} onBytes
 * @param {(ms: number) => void} onRetry
 */
async function readEvents(body, onMessage, onBytes, onRetry) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let name = "";
  /** @type {string[]} */
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onBytes();
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split("\n");
    buffer = lines.pop() || "";
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

/**
 * @typedef {object} StreamHandlers
 * @property {(name: string, json: any) => void} onEvent every event, parsed
 * @property {(error: Error) => void} onDown the connection failed; a retry is scheduled
 * @property {(error: AuthError) => void} onAuthError the session has ended
 * @property {(error: Error) => void} onClosed the server closed it for good
 */
/** @typedef {{stop(): void, reconnectNow(): void}} AlertStream */

/**
 * Keeps GET /alerts/stream open.
 * @param {StreamHandlers} handlers
 * @returns {AlertStream}
 */
export function openAlertStream({ onEvent, onDown, onAuthError, onClosed }) {
  let stopped = false;
  let connected = false;
  /** @type {AbortController | null} */
  let controller = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let retryMs = 3000;
  let failures = 0;
  let heartbeatMs = 15000;
  let lastByte = Date.now();
  /** @type {{reason?: string, action?: string} | null} */
  let farewell = null;  // the server's `close` event: {reason, action}
  let renewed = false;  // a wall display renewed its token since the last `ready`

  /** @param {string} name @param {string} data */
  function message(name, data) {
    let json;
    try {
      json = JSON.parse(data);
    } catch {
      return;
    }
    if (name === "ready") {
      failures = 0;
      renewed = false;
      if (json.heartbeat_s) heartbeatMs = json.heartbeat_s * 1000;
    }
    if (name === "close") farewell = json;
    onEvent(name, json);
  }

  // The server ended the stream and said what to do next: "login" (the session was
  // logged out, deactivated or expired: back to the login form), "stop" (too many live
  // streams for this account: reconnecting would only close another one), or reconnect.
  /** @returns {boolean} */
  function ended() {
    const { reason = "", action = "reconnect" } = farewell || {};
    farewell = null;
    if (action === "login" && loadDisplay()) return false;  // a display renews and reconnects
    if (action === "login") {
      stopped = true;
      onAuthError(new AuthError(t("Your session has ended ({reason}); please log in again.",
        { reason })));
      return true;
    }
    if (action === "stop") {
      stopped = true;
      onClosed(new Error(t(
        "The live feed was closed: {reason}. Reload the page to use this screen again.",
        { reason })));
      return true;
    }
    return false;
  }

  /** @returns {Promise<void>} */
  async function connect() {
    timer = null;
    controller = new AbortController();
    const session = loadSession();
    if (!session) return onAuthError(new AuthError(t("Please log in.")));
    try {
      const resp = await fetch(API + "/alerts/stream", {
        headers: { Authorization: `Bearer ${session.access_token}`, Accept: "text/event-stream" },
        cache: "no-store",
        signal: controller.signal,
      });
      noteServerClock(resp);
      if (resp.status === 401 && loadDisplay()) {
        // A wall display never logs out: renew the token with the display secret and
        // reconnect at once (once; a token refused again right after waits for the backoff).
        const refused = await detailOf(resp);
        await renewDisplaySession();
        if (!renewed) {
          renewed = true;
          return connect();
        }
        throw new Error(t("{refused}; retrying.", { refused }));
      }
      if (resp.status === 401) {
        stopped = true;
        return onAuthError(new AuthError(await detailOf(resp)));
      }
      if (!resp.ok || !resp.body) throw new ApiError(await detailOf(resp), resp.status);
      connected = true;
      lastByte = Date.now();
      await readEvents(resp.body, message, () => { lastByte = Date.now(); },
        (ms) => { retryMs = ms; });
      connected = false;
      if (ended()) return undefined;
      throw new Error(t("The live feed was closed by the server; reconnecting."));
    } catch (err) {
      connected = false;
      if (stopped) return undefined;
      if (err instanceof SwitchedOff) {
        stopped = true;
        return onAuthError(err);
      }
      failures += 1;
      onDown(err.name === "AbortError"
        ? new Error(t("The live feed stopped responding; reconnecting.")) : networkError(err));
      const backoff = Math.min(MAX_RETRY_MS, retryMs * 2 ** Math.min(failures - 1, 4));
      timer = setTimeout(connect, backoff * (0.75 + Math.random() / 2));
    }
    return undefined;
  }

  // A connection that went silent (no heartbeat) is dropped and made again.
  const watchdog = setInterval(() => {
    if (connected && Date.now() - lastByte > heartbeatMs * 2 + 5000) controller?.abort();
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
      if (timer !== null) clearTimeout(timer);
      if (controller) controller.abort();
    },
    reconnectNow,
  };
}
