// @ts-check
// Time on the pages: ages ("3 min ago") and clock times, on the server's clock when this
// device's clock is clearly off (the server's `Date` header, noted by every API answer).

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
 * "just now", "3 min ago", "2 h 5 min ago", "1 day ago".
 * @param {string} iso an ISO 8601 time
 * @returns {string}
 */
export function ago(iso) {
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

/**
 * "14:03" (or "14:03:27") in the browser's time zone, 24-hour.
 * @param {number} ms milliseconds since the epoch
 * @param {boolean} [withSeconds]
 * @returns {string}
 */
export function clockTime(ms, withSeconds = false) {
  /** @type {Intl.DateTimeFormatOptions} */
  const options = { hour: "2-digit", minute: "2-digit", hour12: false };
  if (withSeconds) options.second = "2-digit";
  return new Date(ms).toLocaleTimeString([], options);
}

/** @type {Map<string, Intl.DateTimeFormat>} */
const siteFormats = new Map();

/**
 * "2026-03-01 14:03": a time as the site's people read it — in the SITE's time zone (never
 * the browser's), 24-hour, ISO-like (issue 14's rule). The one formatter for it: the audit
 * page, the resident's timeline and any other list of times in a site use this.
 * @param {string | number} time an ISO 8601 time, or milliseconds since the epoch
 * @param {string} timeZone the site's IANA zone, e.g. "Asia/Shanghai"
 * @returns {string}
 */
export function siteTime(time, timeZone) {
  const ms = typeof time === "number" ? time : Date.parse(time);
  if (Number.isNaN(ms)) return String(time);
  let format = siteFormats.get(timeZone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat("en-CA", { timeZone, hourCycle: "h23", year: "numeric",
        month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
    } catch {  // an unknown zone: UTC, said so, rather than the browser's zone
      return `${siteTime(ms, "UTC")} UTC`;
    }
    siteFormats.set(timeZone, format);
  }
  /** @type {Record<string, string>} */
  const part = {};
  for (const p of format.formatToParts(ms)) part[p.type] = p.value;
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}`;
}
