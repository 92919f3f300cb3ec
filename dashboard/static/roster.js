// @ts-check
// The duty roster page (templates/roster.html). Who is on duty is the server's answer
// (kernel.roster, the same function assignment and escalation use) at one instant: now, or
// the `at` of the page's address (/admin/roster?site=north&at=2026-03-02T10:00:00Z), so the
// page can show any moment and tests do not depend on the clock.

import { formValues, guarded, say, startAdminPage } from "./admin.js";
import { api } from "./api.js";
import { $, $input, el } from "./dom.js";
import { t } from "./i18n.js";
import { addDays, dayHeading, now, siteDate, siteTime } from "./time.js";
import { dutyOverrideLabel, roleLabel, vocabulary } from "./vocabulary.js";

/**
 * @typedef {object} ShiftRow
 * @property {number} id
 * @property {number} user_id
 * @property {string} username
 * @property {string} full_name
 * @property {string} role
 * @property {string} starts_local
 * @property {string} ends_local
 * @property {string} starts_at
 * @property {string} ends_at
 */
/**
 * @typedef {object} Person
 * @property {number} id
 * @property {string} username
 * @property {string} full_name
 * @property {string} role
 * @property {string | null} duty_override
 */

const params = new URLSearchParams(location.search);
const DAY_MS = 86400000;
/** @type {import("./api.js").Session | null} */
let me = null;

/** The instant shown: the address's `at`, else now (on the server's clock). */
function instant() {
  const at = params.get("at");
  const ms = at ? Date.parse(at) : NaN;
  return Number.isNaN(ms) ? now() : ms;
}

/** @param {string} site */
async function people(site) {
  if (!me || (me.role !== "admin" && me.role !== "duty_officer")) return [];
  /** @type {Person[]} */
  const all = await api(`/users?site=${encodeURIComponent(site)}&active=true`);
  return all.filter((p) => p.role === "duty_officer" || p.role === "care_worker");
}

/** @param {string} site */
async function show(site) {
  const at = instant();
  const from = new Date(at - DAY_MS).toISOString();
  const to = new Date(at + 8 * DAY_MS).toISOString();
  const roster = await api(`/sites/${encodeURIComponent(site)}/shifts?at=${
    encodeURIComponent(new Date(at).toISOString())}&from=${encodeURIComponent(from)}&to=${
    encodeURIComponent(to)}`);
  const staff = await people(site);
  const zone = roster.timezone;
  const [before, after] = t("Time zone {zone}").split("{zone}");
  $("site-zone").replaceChildren(before, el("span", { translate: false }, zone), after ?? "");
  const today = siteDate(at, zone);
  $("on-duty-at").textContent = t("({time} site time)", { time: siteTime(at, zone) });
  const onDuty = new Set(roster.on_duty);
  paintPeople(site, staff, onDuty);
  paintWeek(site, roster.shifts, today, at);
  const select = /** @type {HTMLSelectElement} */ ($("shift-user"));
  select.replaceChildren(...staff.map((p) => el("option", { value: String(p.id), translate: false },
    t("{name} ({role})", { name: p.full_name || p.username, role: roleLabel(p.role) }))));
  $("add-panel").hidden = staff.length === 0;
  if (!$input("shift-day").value) $input("shift-day").value = today;
}

/**
 * @param {string} site
 * @param {Person[]} staff
 * @param {Set<number>} onDuty
 */
function paintPeople(site, staff, onDuty) {
  $("people-rows").replaceChildren(...staff.map((p) => {
    const select = el("select", { "aria-label": t("Override for {username}", { username: p.username }) },
      el("option", { value: "" }, t("Follow the roster")),
      ...vocabulary.duty_overrides.map((o) => el("option", { value: o.value }, o.label)));
    select.value = p.duty_override || "";
    select.addEventListener("change", () => guarded(async () => {
      await api(`/users/${p.id}/duty-override`, { method: "PUT",
        body: { override: select.value || null } });
      say(t("{username}: {override}.", { username: p.username,
        override: dutyOverrideLabel(select.value || null) || t("follows the roster") }));
      await show(site);
    }));
    return el("tr", { dataset: { username: p.username } },
      el("td", { translate: false }, p.full_name || p.username), el("td", {}, roleLabel(p.role)),
      el("td", { className: "on-duty" }, onDuty.has(p.id) ? t("On duty") : t("Off duty")),
      el("td", {}, select));
  }));
}

/**
 * @param {string} site
 * @param {ShiftRow[]} shifts
 * @param {string} today
 * @param {number} at
 */
function paintWeek(site, shifts, today, at) {
  const days = [...Array(7).keys()].map((n) => addDays(today, n));
  const canEdit = me !== null && (me.role === "admin" || me.role === "duty_officer");
  $("week-grid").replaceChildren(...days.map((day) => el("div", { className: "week-day" },
    el("h3", {}, dayHeading(day)),
    ...shifts.filter((s) => s.starts_local.slice(0, 10) === day).map((s) => {
      const running = Date.parse(s.starts_at) <= at && at < Date.parse(s.ends_at);
      const remove = el("button", { type: "button", className: "secondary",
        "aria-label": t("Remove shift of {username}", { username: s.username }) }, "✕");
      remove.addEventListener("click", () => guarded(async () => {
        await api(`/sites/${encodeURIComponent(site)}/shifts/${s.id}`, { method: "DELETE" });
        await show(site);
      }));
      return el("div", { className: running ? "shift now" : "shift", dataset: { shift: String(s.id) } },
        el("span", {}, `${s.starts_local.slice(11, 16)}–${s.ends_local.slice(11, 16)} `,
          el("span", { translate: false }, s.full_name || s.username)),
        canEdit ? remove : null);
    }))));
}

/** @param {string} site */
async function addShift(site) {
  const values = formValues(/** @type {HTMLFormElement} */ ($("shift-form")));
  const endDay = values.end <= values.start ? addDays(values.day, 1) : values.day;
  await api(`/sites/${encodeURIComponent(site)}/shifts`, { method: "POST", body: {
    user_id: Number(values.user_id), starts_local: `${values.day}T${values.start}`,
    ends_local: `${endDay}T${values.end}` } });
  say("");
  await show(site);
}

startAdminPage(async (session) => {
  me = session;
  const site = params.get("site") || session.site_id || "";
  $input("site").value = site;
  $("site-form").addEventListener("submit", (event) => {
    event.preventDefault();
    params.set("site", $input("site").value.trim());
    history.replaceState(null, "", `?${params}`);
    guarded(() => show($input("site").value.trim()));
  });
  const shiftForm = /** @type {HTMLFormElement} */ ($("shift-form"));
  shiftForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => addShift($input("site").value.trim()), shiftForm);
  });
  if (site) await show(site);
  else say(t("Choose a site."));
});
