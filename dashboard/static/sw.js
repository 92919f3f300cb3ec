// Eldercare service worker (served at /sw.js, scope: the whole site). It only shows push
// notifications; it caches nothing, so the pages always come from the server.
//
// Push payload (JSON): {title, body, url, tag?, severity?}. A click opens `url` (same-origin
// paths only), reusing an open phone page (/worker or /alerts/{id}) when there is one; the
// duty screen (/) is never navigated away.
"use strict";

const FALLBACK_URL = "/worker";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function payloadOf(event) {
  if (!event.data) return {};
  try {
    return event.data.json();
  } catch {
    return { body: event.data.text() };
  }
}

// Only links into this site are followed.
function safeUrl(url) {
  try {
    const target = new URL(url || FALLBACK_URL, self.location.origin);
    return target.origin === self.location.origin ? target.href : FALLBACK_URL;
  } catch {
    return FALLBACK_URL;
  }
}

self.addEventListener("push", (event) => {
  const payload = payloadOf(event);
  const critical = payload.severity === "critical";
  const options = {
    body: payload.body || "",
    data: { url: safeUrl(payload.url) },
    icon: "/static/favicon.svg",
    requireInteraction: critical,
  };
  if (payload.tag) {
    options.tag = String(payload.tag);
    options.renotify = true;
  }
  event.waitUntil(self.registration.showNotification(payload.title || "Eldercare alert", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = safeUrl(event.notification.data && event.notification.data.url);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      const path = new URL(client.url).pathname;
      if (path === FALLBACK_URL || path.startsWith("/alerts/")) {
        const focused = await client.focus();
        return focused && "navigate" in focused ? focused.navigate(url) : focused;
      }
    }
    return self.clients.openWindow(url);
  })());
});
