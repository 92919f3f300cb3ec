// @ts-check
// The staff page (templates/staff.html): accounts of duty officers, care workers and
// administrators; create, edit, deactivate, reset a password, see and end sessions.

import { formValues, guarded, say, startAdminPage } from "./admin.js";
import { api } from "./api.js";
import { $, $button, el } from "./dom.js";
import { t } from "./i18n.js";
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
    el("td", { translate: false }, a.username), el("td", { translate: false }, a.full_name),
    el("td", {}, roleLabel(a.role)),
    el("td", { translate: false }, a.site_id || ""), el("td", { translate: false }, a.phone || ""),
    el("td", {}, a.active
      ? (a.must_change_password ? t("Active (temporary password)") : t("Active"))
      : t("Deactivated")),
    el("td", {},
      action(t("Edit"), () => startEdit(a)),
      action(a.active ? t("Deactivate") : t("Activate"), () => setActive(a, !a.active)),
      action(t("Reset password"), () => resetPassword(a)),
      action(t("Sessions"), () => showSessions(a)))));
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

/**
 * "Temporary password for ann (shown once): …", the name and the password as data.
 * @param {string} username
 * @param {string} password
 */
function shownOnce(username, password) {
  const text = t("Temporary password for {username} (shown once): {password}",
    { username: "\u0000", password: "\u0001" });
  const parts = text.split(/(\u0000|\u0001)/);
  $("shown-once").replaceChildren(...parts.map((part) => (part === "\u0000"
    ? el("span", { translate: false }, username)
    : part === "\u0001" ? el("span", { translate: false }, password) : part)));
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
  say(t("Saved {username}.", { username: editing.username }));
  $("edit-panel").hidden = true;
  editing = null;
  await refresh();
}

/** @param {Account} a @param {boolean} active */
async function setActive(a, active) {
  await api(`/users/${a.id}`, { method: "PATCH", body: { active } });
  say(active ? t("{username} can log in again.", { username: a.username })
    : t("{username} is deactivated; their sessions have ended.", { username: a.username }));
  await refresh();
}

/** @param {Account} a */
async function resetPassword(a) {
  if (!window.confirm(t("Give {username} a new temporary password? Their sessions end.",
    { username: a.username }))) {
    return;
  }
  const answer = await api(`/users/${a.id}/reset-password`, { method: "POST", body: {} });
  shownOnce(a.username, answer.temporary_password);
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
    el("td", { translate: false }, s.client_address || ""),
    el("td", { translate: false }, (s.user_agent || "").slice(0, 60)),
    el("td", {}, s.live ? t("Active") : ended(s.revoked_reason)),
    el("td", {}, s.live ? action(t("End"), () => endSession(a, s.id)) : ""))));
}

/**
 * Why a session ended, in the page's language. The reasons are the fixed texts the server
 * records (dashboard/auth.py, staff.py, account.py; kernel/accounts.py); an unknown one is
 * shown as it came (data).
 * @param {string | null} reason
 * @returns {string}
 */
function ended(reason) {
  if (!reason) return t("Ended (expired)");
  /** @type {Record<string, string>} */
  const known = {
    "logged out": t("Ended (logged out)"), "password changed": t("Ended (password changed)"),
    "password reset": t("Ended (password reset)"),
    "account deactivated": t("Ended (account deactivated)"),
  };
  if (Object.prototype.hasOwnProperty.call(known, reason)) return known[reason];
  const by = /^ended by administrator (.+)$/.exec(reason);
  if (by) return t("Ended (ended by administrator {username})", { username: by[1] });
  return t("Ended ({reason})", { reason });
}

/** @param {Account} a @param {string | null} sessionId */
async function endSession(a, sessionId) {
  await api(`/users/${a.id}/sessions${sessionId ? `/${sessionId}` : ""}`,
    { method: "DELETE" });
  say(sessionId ? t("Ended a session of {username}.", { username: a.username })
    : t("Ended every session of {username}.", { username: a.username }));
  await showSessions(a);
}

async function create(/** @type {HTMLFormElement} */ form) {
  const values = formValues(form);
  const body = { username: values.username, full_name: values.full_name || "",
    role: values.role, site_id: values.site_id || null, phone: values.phone || null };
  const answer = await api("/users", { method: "POST", body });
  shownOnce(answer.account.username, answer.temporary_password);
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
