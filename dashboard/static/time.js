// @ts-check
// Time on the pages: ages ("3 min ago") and clock times, on the server's clock when this
// device's clock is clearly off (the server's `Date` header, noted by every API answer).
// Clock times are the SITE's (issue 14): an alert's in its own `site_timezone`, a page's own
// times (its clock, "down since") in the page's zone (setPageZone; docs/dashboard.md).

import { lang, t } from "./i18n.js";

let clockOffsetMs = 0;

/**
 * Note the server's clock from an answer's `Date` header.
 * @param {Response} resp
 */
export function noteServerClock(resp) {
  const date = Date.parse(resp.headers.get("Date") || "");
  if (Number.isNaN(date)) return;
  const offset = date - Date.now();
  clockOffsetMs = Math.abs(offset) > 5000 ? offset : 0;
}

/** Now in milliseconds since the epoch, on the server's clock. @returns {number} */
export function now() {
  return Date.now() + clockOffsetMs;
}

/**
 * "just now", "3 min ago", "2 h 5 min ago", "1 day ago" (in the page's language).
 * @param {string} iso an ISO 8601 time
 * @returns {string}
 */
export function ago(iso) {
  const seconds = Math.max(0, Math.round((now() - Date.parse(iso)) / 1000));
  if (seconds < 45) return t("just now");
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return t("{minutes} min ago", { minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    const rest = minutes % 60;
    return rest ? t("{hours} h {minutes} min ago", { hours, minutes: rest })
      : t("{hours} h ago", { hours });
  }
  const days = Math.floor(hours / 24);
  return days === 1 ? t("1 day ago") : t("{days} days ago", { days });
}

// The page's own zone, for times that belong to no alert (the duty screen's clock, "down
// since", the parts strip): the logged-in person's site's (common.js follows the session).
// Until it is known, or when the sites shown do not share one zone, UTC, labelled as such.
let pageZoneName = "UTC";
let pageZoneKnown = false;

/**
 * Set the page's zone (an IANA zone), or null when it has none: times then show in UTC with
 * a "UTC" label, never silently in the browser's zone.
 * @param {string | null | undefined} zone
 */
export function setPageZone(zone) {
  pageZoneName = zone || "UTC";
  pageZoneKnown = Boolean(zone);
}

/** The page's zone (an IANA zone; "UTC" when it has none). @returns {string} */
export function pageZone() {
  return pageZoneName;
}

/**
 * "14:03" (or "14:03:27"): a time of the page itself (no alert's) in the page's zone,
 * 24-hour; "14:03 UTC" while the page has no zone of its own.
 * @param {string | number} time an ISO 8601 time, or milliseconds since the epoch
 * @param {boolean} [withSeconds]
 * @returns {string}
 */
export function pageClock(time, withSeconds = false) {
  const text = siteClock(time, pageZoneName, withSeconds);
  return pageZoneKnown || text.endsWith(" UTC") ? text : `${text} UTC`;
}

/** @type {Map<string, Intl.DateTimeFormat>} */
const siteFormats = new Map();

/**
 * The year, month, day, hour, minute and second of an instant in a zone, 24-hour; null for
 * a zone this browser does not know.
 * @param {number} ms milliseconds since the epoch
 * @param {string} timeZone an IANA zone
 * @returns {Record<string, string> | null}
 */
function partsIn(ms, timeZone) {
  let format = siteFormats.get(timeZone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat("en-CA", { timeZone, hourCycle: "h23", year: "numeric",
        month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    } catch {
      return null;
    }
    siteFormats.set(timeZone, format);
  }
  /** @type {Record<string, string>} */
  const part = {};
  for (const p of format.formatToParts(ms)) part[p.type] = p.value;
  return part;
}

/**
 * The one way a page turns a time into text (issue 14's rule: the SITE's zone, never the
 * browser's; 24-hour; ISO-like). An unknown zone falls back to UTC and says so, rather than
 * silently showing the browser's zone.
 * @param {string | number} time an ISO 8601 time, or milliseconds since the epoch
 * @param {string} timeZone the site's IANA zone
 * @param {(p: Record<string, string>) => string} shape which parts to show
 * @returns {string}
 */
function inSite(time, timeZone, shape) {
  const ms = typeof time === "number" ? time : Date.parse(time);
  if (Number.isNaN(ms)) return String(time);
  const part = partsIn(ms, timeZone);
  if (part) return shape(part);
  return `${shape(/** @type {Record<string, string>} */ (partsIn(ms, "UTC")))} UTC`;
}

/**
 * "2026-03-01 14:03": a time as the site's people read it — in the SITE's time zone (never
 * the browser's), 24-hour, ISO-like (issue 14's rule). The one formatter for it, with its
 * variants below (siteClock, siteDate, siteWhen): every page showing a time uses them.
 * @param {string | number} time an ISO 8601 time, or milliseconds since the epoch
 * @param {string} timeZone the site's IANA zone, e.g. "Asia/Shanghai"
 * @returns {string}
 */
export function siteTime(time, timeZone) {
  return inSite(time, timeZone, (p) => `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`);
}

/**
 * "14:03" (or "14:03:27"): the site's clock time, 24-hour, for times of today or within one
 * visible day (a history's steps, a shift's hours).
 * @param {string | number} time an ISO 8601 time, or milliseconds since the epoch
 * @param {string} timeZone the site's IANA zone
 * @param {boolean} [withSeconds]
 * @returns {string}
 */
export function siteClock(time, timeZone, withSeconds = false) {
  return inSite(time, timeZone,
    (p) => `${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ""}`);
}

/**
 * "2026-03-01": the site's calendar date of a time.
 * @param {string | number} time an ISO 8601 time, or milliseconds since the epoch
 * @param {string} timeZone the site's IANA zone
 * @returns {string}
 */
export function siteDate(time, timeZone) {
  return inSite(time, timeZone, (p) => `${p.year}-${p.month}-${p.day}`);
}

/**
 * "14:03" when the time falls on the site's same day as `sameDayAs` (by default today, on
 * the server's clock), else "2026-03-01 14:03": short where the day goes without saying
 * (today; the end of a visit that started that day), never ambiguous.
 * @param {string | number} time an ISO 8601 time, or milliseconds since the epoch
 * @param {string} timeZone the site's IANA zone
 * @param {string | number} [sameDayAs] the time whose day need not be repeated
 * @returns {string}
 */
export function siteWhen(time, timeZone, sameDayAs = now()) {
  return siteDate(time, timeZone) === siteDate(sameDayAs, timeZone)
    ? siteClock(time, timeZone) : siteTime(time, timeZone);
}

/**
 * "Tue 2026-03-10": a calendar day (no zone: it is already the site's day) with its weekday
 * in the page's language.
 * @param {string} day YYYY-MM-DD
 * @returns {string}
 */
export function dayHeading(day) {
  const name = weekday(day);
  return name ? `${name} ${day}` : day;
}

/**
 * "Tue": the weekday of a calendar day in the page's language ("" for no valid day).
 * @param {string} day YYYY-MM-DD
 * @returns {string}
 */
export function weekday(day) {
  const ms = Date.parse(`${day}T12:00:00Z`);
  if (Number.isNaN(ms)) return "";
  return new Intl.DateTimeFormat(lang, { weekday: "short", timeZone: "UTC" }).format(ms);
}

/**
 * The calendar day `n` days after `day` (both YYYY-MM-DD): date arithmetic, no zone.
 * @param {string} day @param {number} n
 * @returns {string}
 */
export function addDays(day, n) {
  const ms = Date.parse(`${day}T00:00:00Z`) + n * 86400000;
  const part = /** @type {Record<string, string>} */ (partsIn(ms, "UTC"));
  return `${part.year}-${part.month}-${part.day}`;
}
