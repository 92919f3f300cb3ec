// @ts-check
// Eldercare service worker (served at /sw.js, scope: the whole site). It only shows push
// notifications; it caches nothing, so the pages always come from the server.
//
// Push payload (JSON): {title, body, url, tag?, id?, severity?}. A click opens `url`
// (same-origin paths only), reusing an open phone page (/worker or /alerts/{id}) when there is
// one; the duty screen (/) is never navigated away.
//
// `tag` (alert-{id}) keeps one notification per alert: a later message about it (escalation,
// all-clear) replaces the earlier one and alerts again. `id` is the message's idempotency key:
// delivery is at least once, so the same message may arrive twice; a repeat of the message
// already shown under its tag replaces it silently instead of alerting again.
//
// Language: the title and body are written by the server in the RECIPIENT's language
// (alerts/notify/messages.py, the person's language setting); this worker has no catalog
// and shows them as they come. Its one text of its own, FALLBACK_TITLE, is shown only for a
// payload without a title, which the platform never sends (channels/webpush.py always sets
// one); it names the product, so it stays as it is in every language.
"use strict";

/** @type {ServiceWorkerGlobalScope} */
const sw = /** @type {any} */ (self);
const FALLBACK_URL = "/worker";
const FALLBACK_TITLE = "Eldercare alert";  // never used by the platform's own payloads

/**
 * A push message's payload.
 * @typedef {object} Payload
 * @property {string} [title]
 * @property {string} [body]
 * @property {string} [url]
 * @property {string} [tag]
 * @property {string} [id]
 * @property {string} [severity]
 */

sw.addEventListener("install", () => sw.skipWaiting());
sw.addEventListener("activate", (event) => event.waitUntil(sw.clients.claim()));

/** @param {PushEvent} event @returns {Payload} */
function payloadOf(event) {
  if (!event.data) return {};
  try {
    return event.data.json();
  } catch {
    return { body: event.data.text() };
  }
}

// Only links into this site are followed.
/** @param {string | undefined} url @returns {string} */
function safeUrl(url) {
  try {
    const target = new URL(url || FALLBACK_URL, sw.location.origin);
    return target.origin === sw.location.origin ? target.href : FALLBACK_URL;
  } catch {
    return FALLBACK_URL;
  }
}

// True when the notification shown under `tag` is this very message (a resend).
/** @param {string} tag @param {string | null} id @returns {Promise<boolean>} */
async function alreadyShown(tag, id) {
  if (!id) return false;
  const shown = await sw.registration.getNotifications({ tag });
  return shown.some((n) => n.data && n.data.id === id);
}

/** @param {Payload} payload @returns {Promise<void>} */
async function show(payload) {
  const critical = payload.severity === "critical";
  const id = payload.id ? String(payload.id) : null;
  /** @type {NotificationOptions & {renotify?: boolean}} */
  const options = {
    body: payload.body || "",
    data: { url: safeUrl(payload.url), id },
    icon: "/static/favicon.svg",
    requireInteraction: critical,
  };
  const tag = payload.tag || id;
  if (tag) {
    options.tag = String(tag);
    options.renotify = !(await alreadyShown(options.tag, id));
  }
  return sw.registration.showNotification(payload.title || FALLBACK_TITLE, options);
}

sw.addEventListener("push", (event) => {
  event.waitUntil(show(payloadOf(event)));
});

sw.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = safeUrl(event.notification.data && event.notification.data.url);
  event.waitUntil((async () => {
    const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      const path = new URL(client.url).pathname;
      if (path === FALLBACK_URL || path.startsWith("/alerts/")) {
        const focused = await client.focus();
        return focused && "navigate" in focused ? focused.navigate(url) : focused;
      }
    }
    return sw.clients.openWindow(url);
  })());
});
