// @ts-check
// The staff page (templates/staff.html): accounts of duty officers, care workers and
// administrators; create, edit, deactivate, reset a password, see and end sessions.

import { formValues, guarded, say, startAdminPage } from "./admin.js";
import { api } from "./api.js";
import { $, $button, el } from "./dom.js";
import { siteTime } from "./time.js";
import { roleLabel, vocabulary } from "./vocabulary.js";

/**
 * @typedef {object} Account
 * @property {number} id
 * @property {string} username
 * @property {string} full_name
 * @property {string} role
 * @property {string | null} site_id
 * @property {string | null} phone
 * @property {boolean} active
 * @property {boolean} must_change_password
 * @property {boolean} totp_enabled
 */

// Family accounts have their own page; wall displays are set up on the duty screen.
const STAFF_ROLES = vocabulary.roles.filter((r) => r.value !== "family" && r.value !== "display");
/** @type {Account | null} */
let editing = null;
/** @type {Account | null} */
let sessionsOf = null;

/** @param {HTMLSelectElement} select */
function fillRoles(select) {
  select.replaceChildren(...STAFF_ROLES.map((r) => el("option", { value: r.value }, r.label)));
}

async function refresh() {
  /** @type {Account[]} */
  const accounts = await api("/users");
  const rows = accounts.filter((a) => a.role !== "family").map((a) => el("tr",
    { dataset: { username: a.username } },
    el("td", {}, a.username), el("td", {}, a.full_name), el("td", {}, roleLabel(a.role)),
    el("td", {}, a.site_id || ""), el("td", {}, a.phone || ""),
    el("td", {}, a.active ? (a.must_change_password ? "Active (temporary password)" : "Active")
      : "Deactivated"),
    el("td", {},
      action("Edit", () => startEdit(a)),
      action(a.active ? "Deactivate" : "Activate", () => setActive(a, !a.active)),
      action("Reset password", () => resetPassword(a)),
      action("Sessions", () => showSessions(a)))));
  $("staff-rows").replaceChildren(...rows);
}

/**
 * @param {string} label
 * @param {() => Promise<void>} onClick
 */
function action(label, onClick) {
  const button = el("button", { type: "button", className: "secondary" }, label);
  button.addEventListener("click", () => guarded(onClick));
  return button;
}

/** @param {Account} a */
async function startEdit(a) {
  editing = a;
  $("edit-panel").hidden = false;
  $("edit-username").textContent = a.username;
  const form = /** @type {HTMLFormElement} */ ($("edit-form"));
  /** @type {HTMLInputElement} */ (form.elements.namedItem("full_name")).value = a.full_name;
  /** @type {HTMLSelectElement} */ (form.elements.namedItem("role")).value = a.role;
  /** @type {HTMLInputElement} */ (form.elements.namedItem("site_id")).value = a.site_id || "";
  /** @type {HTMLInputElement} */ (form.elements.namedItem("phone")).value = a.phone || "";
}

async function saveEdit() {
  if (!editing) return;
  const values = formValues(/** @type {HTMLFormElement} */ ($("edit-form")));
  const body = { full_name: values.full_name || "", role: values.role,
    site_id: values.site_id || null, phone: values.phone || null };
  await api(`/users/${editing.id}`, { method: "PATCH", body });
  say(`Saved ${editing.username}.`);
  $("edit-panel").hidden = true;
  editing = null;
  await refresh();
}

/** @param {Account} a @param {boolean} active */
async function setActive(a, active) {
  await api(`/users/${a.id}`, { method: "PATCH", body: { active } });
  say(active ? `${a.username} can log in again.`
    : `${a.username} is deactivated; their sessions have ended.`);
  await refresh();
}

/** @param {Account} a */
async function resetPassword(a) {
  if (!window.confirm(`Give ${a.username} a new temporary password? Their sessions end.`)) {
    return;
  }
  const answer = await api(`/users/${a.id}/reset-password`, { method: "POST", body: {} });
  $("shown-once").textContent = `Temporary password for ${a.username} (shown once): `
    + answer.temporary_password;
  await refresh();
}

/** @param {Account} a */
async function showSessions(a) {
  sessionsOf = a;
  $("sessions-panel").hidden = false;
  $("sessions-username").textContent = a.username;
  /** @type {any[]} */
  const sessions = await api(`/users/${a.id}/sessions`);
  $("session-rows").replaceChildren(...sessions.map((s) => el("tr", {},
    el("td", {}, siteTime(s.created_at, s.site_timezone || "UTC")),
    el("td", {}, siteTime(s.expires_at, s.site_timezone || "UTC")),
    el("td", {}, s.client_address || ""), el("td", {}, (s.user_agent || "").slice(0, 60)),
    el("td", {}, s.live ? "Live" : `Ended (${s.revoked_reason || "expired"})`),
    el("td", {}, s.live ? action("End", () => endSession(a, s.id)) : ""))));
}

/** @param {Account} a @param {string | null} sessionId */
async function endSession(a, sessionId) {
  await api(`/users/${a.id}/sessions${sessionId ? `/${sessionId}` : ""}`,
    { method: "DELETE" });
  say(sessionId ? `Ended a session of ${a.username}.` : `Ended every session of ${a.username}.`);
  await showSessions(a);
}

async function create(/** @type {HTMLFormElement} */ form) {
  const values = formValues(form);
  const body = { username: values.username, full_name: values.full_name || "",
    role: values.role, site_id: values.site_id || null, phone: values.phone || null };
  const answer = await api("/users", { method: "POST", body });
  $("shown-once").textContent = `Temporary password for ${answer.account.username} `
    + `(shown once): ${answer.temporary_password}`;
  form.reset();
  say("");
  await refresh();
}

startAdminPage(async () => {
  fillRoles(/** @type {HTMLSelectElement} */ ($("create-role")));
  fillRoles(/** @type {HTMLSelectElement} */ ($("edit-role")));
  const form = /** @type {HTMLFormElement} */ ($("create-form"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => create(form), form);
  });
  const editForm = /** @type {HTMLFormElement} */ ($("edit-form"));
  editForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(saveEdit, editForm);
  });
  $button("edit-cancel").addEventListener("click", () => { $("edit-panel").hidden = true; });
  $button("end-all").addEventListener("click", () => {
    if (sessionsOf) { const a = sessionsOf; guarded(() => endSession(a, null)); }
  });
  await refresh();
});
