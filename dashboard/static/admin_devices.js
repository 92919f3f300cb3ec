// @ts-check
// Device administration (/admin/devices): list, provision (the secret and its QR code are
// shown once, in a dialog), revoke with confirmation, move to another resident. The table
// is filtered on the page (the list is not paged): text over resident name, device id and
// type; status active (the default), offline, revoked or all.

import { api, ApiError, AuthError } from "./api.js";
import { leave, startAdminPage } from "./admin.js";
import { $, $button, el } from "./dom.js";
import { clearFieldErrors, fieldErrorsOf, showFieldErrors } from "./form_errors.js";
import { deviceLabel } from "./vocabulary.js";
import { t } from "./i18n.js";
import { followDeviceRows } from "./device_history.js";

/** @typedef {{id: string, type: string, site_id: string, resident_id: number,
 *   resident_name: string, active: boolean, online: boolean | null,
 *   battery: number | null}} DeviceRow */
/** @typedef {{id: number, full_name: string, site_id: string}} Resident */

const DEVICE_TYPES = ["call_button", "bed_sensor"];
/** @type {Resident[]} */
let residents = [];
/** @type {DeviceRow[]} every device, revoked ones included; the filter picks the rows shown */
let devices = [];

/** @param {string} id @returns {string} */
const word = (id) => $(id).textContent || "";

/**
 * @param {any} err
 * @param {string} where id of the message element
 * @param {HTMLFormElement} [form] the submitted form: field errors go next to its fields
 */
function failed(err, where, form) {
  const errors = form && err instanceof ApiError ? fieldErrorsOf(err.body) : [];
  if (err instanceof AuthError) leave(err.message);
  else if (form && errors.length) $(where).textContent = showFieldErrors(form, errors).join("; ");
  else $(where).textContent = err.message;
}

async function loadResidents() {
  residents = await api("/residents");
  const select = /** @type {HTMLSelectElement} */ ($("provision-resident"));
  // An empty first choice: one click on "Provision" must never act on whoever is first.
  select.replaceChildren(el("option", { value: "" }, t("Choose a resident…")),
    ...residents.map((r) => el("option", { value: String(r.id), translate: false },
      `${r.full_name} (${r.site_id}, #${r.id})`)));
  const types = /** @type {HTMLSelectElement} */ ($("provision-type"));
  types.replaceChildren(...DEVICE_TYPES.map((t) => el("option", { value: t }, deviceLabel(t))));
}

/** @param {DeviceRow} d @returns {HTMLTableRowElement} */
function row(d) {
  if (!d.active) {
    return el("tr", { dataset: { device: d.id }, className: "revoked" },
      el("td", { translate: false }, d.id), el("td", {}, deviceLabel(d.type)),
      el("td", { translate: false }, d.resident_name), el("td", { translate: false }, d.site_id),
      el("td", {}, word("word-revoked")), el("td", {}, ""), el("td", {}, ""));
  }
  const revoke = el("button", { type: "button", className: "secondary", dataset: { revoke: d.id } },
    word("word-revoke"));
  revoke.addEventListener("click", () => revokeDevice(d.id));
  const target = el("select", { "aria-label": t("Move {device} to…", { device: d.id }) },
    ...residents.filter((r) => r.id !== d.resident_id).map((r) => el("option",
      { value: String(r.id), translate: false }, `${r.full_name} (${r.site_id})`)));
  const move = el("button", { type: "button", className: "secondary" }, word("word-move"));
  move.addEventListener("click", () => moveDevice(d.id, Number(target.value)));
  const online = d.online === null ? word("word-unknown")
    : word(d.online ? "word-online" : "word-offline");
  return el("tr", { dataset: { device: d.id } }, el("td", { translate: false }, d.id),
    el("td", {}, deviceLabel(d.type)), el("td", { translate: false }, d.resident_name),
    el("td", { translate: false }, d.site_id), el("td", {}, online),
    el("td", {}, d.battery === null ? "" : `${d.battery}%`), el("td", {}, revoke, target, move));
}

/**
 * Whether a device passes the table's filter.
 * @param {DeviceRow} d
 * @param {string} text lowercased search text ("" matches all)
 * @param {string} status "active", "offline", "revoked" or "" (all)
 * @returns {boolean}
 */
function matches(d, text, status) {
  if (status === "active" && !d.active) return false;
  if (status === "revoked" && d.active) return false;
  if (status === "offline" && !(d.active && d.online === false)) return false;
  if (!text) return true;
  return [d.resident_name, d.id, d.type, deviceLabel(d.type)]
    .some((value) => value.toLowerCase().includes(text));
}

function paintDevices() {
  const text = /** @type {HTMLInputElement} */ ($("devices-search")).value.trim().toLowerCase();
  const status = /** @type {HTMLSelectElement} */ ($("devices-status")).value;
  const shown = devices.filter((d) => matches(d, text, status));
  $("devices-body").replaceChildren(...shown.map(row));
  $("devices-count").textContent = String(shown.length);
}

async function loadDevices() {
  devices = await api("/devices?include_revoked=true");
  paintDevices();
}

/** @param {any} cred */
function showSecret(cred) {
  $("secret-device").textContent = cred.device_id;
  $("secret-username").textContent = cred.username;
  $("secret-password").textContent = cred.password;
  $("secret-broker").textContent = `${cred.mqtt_host}:${cred.mqtt_port}`;
  $("secret-prefix").textContent = cred.topic_prefix;
  // The server's SVG as an image (never inserted as markup).
  /** @type {HTMLImageElement} */ ($("secret-qr")).src =
    "data:image/svg+xml;charset=utf-8," + encodeURIComponent(cred.qr_svg);
  const dialog = /** @type {HTMLDialogElement} */ ($("secret-dialog"));
  dialog.addEventListener("close", () => {
    // Forget the secret once the dialog is closed: it is shown once.
    for (const id of ["secret-password", "secret-username", "secret-device"]) $(id).textContent = "";
    /** @type {HTMLImageElement} */ ($("secret-qr")).removeAttribute("src");
  }, { once: true });
  dialog.showModal();
}

/** @param {SubmitEvent} event */
async function provision(event) {
  event.preventDefault();
  const resident = /** @type {HTMLSelectElement} */ ($("provision-resident")).value;
  const type = /** @type {HTMLSelectElement} */ ($("provision-type")).value;
  if (!resident) {
    $("provision-message").textContent = t("Choose the resident the device is for.");
    return;
  }
  const button = $button("provision-button");
  button.disabled = true;
  $("provision-message").textContent = "";
  const form = /** @type {HTMLFormElement} */ ($("provision-form"));
  clearFieldErrors(form);
  try {
    const cred = await api(`/residents/${resident}/devices`, { method: "POST", body: { type } });
    showSecret(cred);
    await loadDevices();
  } catch (err) {
    failed(err, "provision-message", form);
  } finally {
    button.disabled = false;
  }
}

/** @param {string} id */
async function revokeDevice(id) {
  if (!window.confirm(word("word-confirm-revoke"))) return;
  try {
    await api(`/devices/${encodeURIComponent(id)}/revoke`, { method: "POST" });
    await loadDevices();
  } catch (err) {
    failed(err, "devices-message");
  }
}

/** @param {string} id @param {number} residentId */
async function moveDevice(id, residentId) {
  try {
    await api(`/devices/${encodeURIComponent(id)}/move`, { method: "POST",
      body: { resident_id: residentId } });
    await loadDevices();
  } catch (err) {
    failed(err, "devices-message");
  }
}

async function start() {
  try {
    await loadResidents();
    await loadDevices();
  } catch (err) {
    failed(err, "devices-message");
  }
}

/** @type {HTMLFormElement} */ ($("provision-form")).addEventListener("submit", provision);
$("devices-search").addEventListener("input", paintDevices);
$("devices-status").addEventListener("change", paintDevices);
$("devices-filter").addEventListener("submit", (event) => event.preventDefault());
followDeviceRows($("devices-body"));
startAdminPage(start);
