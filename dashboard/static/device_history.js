// @ts-check
// A device's health history on /admin/devices: a click on a row of the device table opens a
// panel (#device-history) with what GET /api/v1/devices/{id} returns — the current state,
// the last test press, the status reports (online/offline and battery, newest first, with a
// small battery line) and the provision/move/revoke events. Times are in the device's SITE
// zone (siteTime, issue 14's rule). Kept apart from admin_devices.js, which only hooks it
// up (`followDeviceRows`). Words come from the page (#word-… spans), never typed here.

import { api, AuthError } from "./api.js";
import { leave } from "./admin.js";
import { $, el } from "./dom.js";
import { siteTime } from "./time.js";
import { deviceLabel } from "./vocabulary.js";

/** @typedef {{time: string, online: boolean, battery: number | null}} StatusReport */
/** @typedef {{time: string, action: string, site_id: string | null,
 *   resident_id: number | null, from_site_id: string | null,
 *   from_resident_id: number | null, actor: string | null}} HistoryEvent */

/** @param {string} id @returns {string} */
const word = (id) => $(id).textContent || "";

/** @type {string | null} the device shown, so a repaint of the table keeps the panel */
let shown = null;

/**
 * A line of the battery level over time (oldest left), as an SVG the screen reader skips:
 * the table below says the same in words.
 * @param {StatusReport[]} reports newest first
 * @returns {SVGSVGElement | null}
 */
function batteryLine(reports) {
  const points = reports.filter((r) => r.battery !== null).reverse();
  if (points.length < 2) return null;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 300 60");
  svg.setAttribute("class", "battery-line");
  svg.setAttribute("aria-hidden", "true");
  const step = 300 / (points.length - 1);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map((p, i) =>
    `${(i * step).toFixed(1)},${(58 - ((p.battery ?? 0) / 100) * 56).toFixed(1)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "2");
  svg.append(line);
  return svg;
}

/**
 * @param {boolean | null} online
 * @returns {string}
 */
function state(online) {
  return online === null ? word("word-unknown") : word(online ? "word-online" : "word-offline");
}

/**
 * @param {HistoryEvent} e
 * @returns {string} where the device went: "resident #12 (north)", from where when moved
 */
function where(e) {
  const to = `#${e.resident_id ?? "?"} (${e.site_id ?? "?"})`;  // ids: data
  return e.from_resident_id === null ? to
    : `#${e.from_resident_id} (${e.from_site_id ?? "?"}) → ${to}`;
}

/** @param {any} d the API's DeviceDetailOut */
function paint(d) {
  const tz = d.site_timezone;
  const at = (/** @type {string | null} */ t) => (t ? siteTime(t, tz) : word("word-never"));
  $("history-title").textContent = `${d.id} · ${deviceLabel(d.type)} · ${d.resident_name} `
    + `(${d.site_id})`;
  $("history-zone").textContent = tz;
  $("history-state").textContent = d.active ? state(d.online) : word("word-revoked");
  $("history-battery").textContent = d.battery === null ? "" : `${d.battery}%`;
  $("history-seen").textContent = at(d.last_seen);
  $("history-test").textContent = at(d.last_test_press);
  const reports = /** @type {StatusReport[]} */ (d.status);
  const chart = batteryLine(reports);
  $("history-battery-line").replaceChildren(...(chart ? [chart] : []));
  $("history-status").replaceChildren(...reports.map((r) => el("tr", {},
    el("td", {}, siteTime(r.time, tz)), el("td", {}, state(r.online)),
    el("td", {}, r.battery === null ? "" : `${r.battery}%`))));
  $("history-status-empty").hidden = reports.length > 0;
  const events = /** @type {HistoryEvent[]} */ (d.history);
  $("history-events").replaceChildren(...events.map((e) => el("tr", {},
    el("td", {}, siteTime(e.time, tz)), el("td", {}, word(`word-event-${e.action}`) || e.action),
    el("td", { translate: false }, where(e)), el("td", { translate: false }, e.actor ?? ""))));
}

/** @param {string} id */
async function open(id) {
  const panel = $("device-history");
  shown = id;
  $("history-message").textContent = "";
  try {
    const detail = await api(`/devices/${encodeURIComponent(id)}`);
    if (shown !== id) return;  // another row was clicked meanwhile
    paint(detail);
    panel.hidden = false;
    for (const tr of document.querySelectorAll("#devices-body tr")) {
      tr.classList.toggle("selected", /** @type {HTMLElement} */ (tr).dataset.device === id);
    }
    panel.scrollIntoView({ block: "nearest" });
  } catch (err) {
    if (err instanceof AuthError) leave(err.message);
    else $("history-message").textContent = err.message;
    panel.hidden = false;
  }
}

/**
 * Open a device's history when a row of `body` is clicked (not its buttons or selects).
 * @param {HTMLElement} body the device table's tbody
 */
export function followDeviceRows(body) {
  body.addEventListener("click", (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    if (target.closest("button, select, a, input")) return;
    const tr = /** @type {HTMLElement | null} */ (target.closest("tr[data-device]"));
    if (tr?.dataset.device) void open(tr.dataset.device);
  });
  // From the keyboard too: each row is focusable, Enter opens its history.
  body.addEventListener("keydown", (event) => {
    const tr = /** @type {HTMLElement} */ (event.target);
    if (event.key === "Enter" && tr.matches("tr[data-device]") && tr.dataset.device) {
      void open(tr.dataset.device);
    }
  });
  const focusable = () => {
    for (const tr of body.querySelectorAll("tr[data-device]:not([tabindex])")) {
      tr.setAttribute("tabindex", "0");
    }
  };
  new MutationObserver(focusable).observe(body, { childList: true });
  focusable();
  $("history-close").addEventListener("click", () => {
    shown = null;
    $("device-history").hidden = true;
    for (const tr of document.querySelectorAll("#devices-body tr.selected")) {
      tr.classList.remove("selected");
    }
  });
}
