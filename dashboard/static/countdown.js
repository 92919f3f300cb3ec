// @ts-check
// The acknowledgement countdown of an open alert: time left until its next escalation step
// (`escalates_at`, alerts/escalation.py), "Escalates in 1:42", then "Escalated 0:12 ago"
// when nobody acknowledged it in time. Spans carry their deadline and are kept current by one
// timer of this module (once a second), whatever page shows them.

import { el } from "./dom.js";
import { t } from "./i18n.js";
import { now } from "./time.js";

/**
 * "1:42" for 102 s, "1:02:03" past an hour.
 * @param {number} ms
 * @returns {string}
 */
export function clockSpan(ms) {
  const total = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/**
 * The countdown's words and whether the deadline has passed.
 * @param {string} deadline ISO 8601
 * @param {number} at now (ms)
 * @returns {{text: string, late: boolean}}
 */
export function countdownText(deadline, at) {
  const left = Date.parse(deadline) - at;
  const time = clockSpan(left);
  if (left > 0) return { text: t("Escalates in {time} unless acknowledged", { time }), late: false };
  return { text: t("Escalated {time} ago: not acknowledged in time", { time }), late: true };
}

/** @param {HTMLElement} span */
function paint(span) {
  const { text, late } = countdownText(span.dataset.deadline || "", now());
  span.textContent = text;
  span.classList.toggle("countdown--late", late);
}

/**
 * A countdown to `deadline`, kept current.
 * @param {string} deadline
 * @returns {HTMLSpanElement}
 */
export function countdownSpan(deadline) {
  const span = el("span", { className: "countdown", dataset: { deadline } });
  paint(span);
  return span;
}

setInterval(() => {
  for (const span of document.querySelectorAll("[data-deadline]")) {
    if (span instanceof HTMLElement) paint(span);
  }
}, 1000);
