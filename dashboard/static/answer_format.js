// @ts-check
// The answer-time numbers as GET /api/v1/sites/{site}/answer-times/{shift,report} return
// them, and how the wall-screen panel (shift_numbers.js) and the report page
// (answer_times.js) write them. Every word (metric names, met / not met) comes with the
// answer (`labels`, defined once in alerts/answer_times.py); nothing here names a metric.
// Units are the page's language's ("45 s" / "45 秒").

import { t } from "./i18n.js";

/**
 * @typedef {object} Share
 * @property {number} within_s
 * @property {number} target
 * @property {number} within
 * @property {number} decided
 * @property {number | null} share
 * @property {string} verdict met, not_met or no_data
 */
/**
 * @typedef {object} Figures
 * @property {number} opened
 * @property {number} acknowledged
 * @property {number} unanswered
 * @property {number} cancelled
 * @property {number} auto_closed
 * @property {number} escalated
 * @property {Share} within_60
 * @property {Share} within_180
 * @property {number | null} ack_median_s
 * @property {number | null} ack_p90_s
 * @property {number | null} resolve_median_s
 * @property {number | null} resolve_p90_s
 */
/**
 * @typedef {object} Labels
 * @property {Record<string, string>} metrics
 * @property {Record<string, string>} verdicts
 * @property {Record<string, string>} groups
 * @property {Record<string, string>} texts
 */
/**
 * @typedef {object} AnswerTimes
 * @property {string} site_id
 * @property {string} timezone
 * @property {string} window shift, last_12h, day or week
 * @property {string} start_local site time, YYYY-MM-DD HH:MM
 * @property {string} end_local
 * @property {number} open_now
 * @property {Figures} all
 * @property {Figures} alarm_calls
 * @property {(Figures & {severity: string})[]} by_severity
 * @property {(Figures & {user_id: number, username: string, full_name: string | null})[]} by_worker
 * @property {Labels} labels
 */

/** A share as a percentage with one decimal ("—" when nothing is decided). @param {number | null} share */
export function percent(share) {
  return share === null ? "—" : t("{percent} %", { percent: (share * 100).toFixed(1) });
}

/** Seconds as "45 s" or "3 min 05 s" ("—" when unknown). @param {number | null} seconds */
export function duration(seconds) {
  if (seconds === null) return "—";
  const s = Math.round(seconds);
  if (s < 60) return t("{seconds} s", { seconds: s });
  if (s < 3600) {
    return t("{minutes} min {seconds} s",
      { minutes: Math.floor(s / 60), seconds: String(s % 60).padStart(2, "0") });
  }
  return t("{hours} h {minutes} min",
    { hours: Math.floor(s / 3600), minutes: String(Math.floor((s % 3600) / 60)).padStart(2, "0") });
}

/** The verdict's label and a class for its colour. @param {Share} share @param {Labels} labels */
export function verdict(share, labels) {
  const className = { met: "state-ok", not_met: "state-bad" }[share.verdict] || "muted";
  return { text: labels.verdicts[share.verdict] || share.verdict, className };
}

/** "target 97.5 %" @param {Share} share @param {Labels} labels */
export function targetText(share, labels) {
  return (labels.texts.target || "{share}").replace("{share}", percent(share.target));
}

/** "75.0 % (target 97.5 %)" @param {Share} share @param {Labels} labels */
export function shareText(share, labels) {
  return `${percent(share.share)} (${targetText(share, labels)})`;
}
