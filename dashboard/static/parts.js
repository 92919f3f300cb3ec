// @ts-check
// The duty screen's status strip: which parts of the platform are up — the pipeline (every
// instance's presence, gateway/presence.py), the database (the live feed's own check) and
// notifications (the "jobs" process: escalation runner and notification dispatcher) — always
// visible, so staff know when to fall back to the phone. Painted from the live feed's status
// by common.js (paintFeed); states are only current while the feed is live and the bus is up,
// otherwise every part is "unknown".

import { el } from "./dom.js";
import { t } from "./i18n.js";
import { pageClock } from "./time.js";
import { platformParts } from "./vocabulary.js";

/** @typedef {import("./live.js").FeedStatus} FeedStatus */
/** @typedef {import("./live.js").PartState} PartState */
/** @typedef {{state: "up" | "down" | "unknown", since: string | null}} StripState */

/** @param {PartState[]} parts @returns {StripState} */
function combine(parts) {
  if (!parts.length) return { state: "unknown", since: null };
  const down = parts.filter((p) => !p.up);
  if (!down.length) return { state: "up", since: null };
  return { state: "down", since: down[0].since || null };
}

/**
 * Each part's state from the feed's status.
 * @param {FeedStatus} status
 * @returns {Record<string, StripState>}
 */
export function stripStates(status) {
  const current = status.stream === "live" && status.bus !== false;
  const unknown = /** @type {StripState} */ ({ state: "unknown", since: null });
  if (!current) return { pipeline: unknown, database: unknown, notifications: unknown };
  const parts = Object.entries(status.parts || {});
  const pipelines = parts.filter(([name]) => name === "pipeline" || name.startsWith("pipeline-"))
    .map(([, part]) => part);
  /** @type {StripState} */
  const database = status.database === null ? unknown
    : { state: status.database ? "up" : "down", since: null };
  return {
    pipeline: combine(pipelines),
    database,
    notifications: combine(parts.filter(([name]) => name === "jobs").map(([, part]) => part)),
  };
}

/** @param {"up" | "down" | "unknown"} state @returns {string} */
function word(state) {
  if (state === "up") return t("up");
  return state === "down" ? t("DOWN") : t("no report");
}

/**
 * Paint the strip (index.html #parts-strip) when the page has one.
 * @param {FeedStatus} status
 */
export function paintStrip(status) {
  const strip = document.getElementById("parts-strip");
  if (!strip) return;
  const states = stripStates(status);
  strip.replaceChildren(...platformParts().map(({ value, label }) => {
    const { state, since } = states[value] || { state: "unknown", since: null };
    const text = since
      ? t("{part}: {state} since {time}", { part: label, state: word(state), time: pageClock(since) })
      : t("{part}: {state}", { part: label, state: word(state) });
    return el("li", { className: `part part--${state}`, dataset: { part: value, state } },
      el("span", { className: "part-dot", "aria-hidden": "true" }), text);
  }));
  const anyDown = Object.values(states).some((s) => s.state === "down");
  strip.classList.toggle("parts-strip--down", anyDown);
  const fallback = document.getElementById("parts-fallback");
  if (fallback) fallback.hidden = !anyDown;
}
