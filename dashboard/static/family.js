// @ts-check
// The family accounts page (templates/family.html): create (temporary password) or invite
// (a one-time link, 72 h), link to residents, unlink.

import { formValues, guarded, say, startAdminPage } from "./admin.js";
import { api } from "./api.js";
import { $, el } from "./dom.js";
import { t } from "./i18n.js";
import { siteTime } from "./time.js";

/** @type {Map<number, string>} */
let residents = new Map();

/** @param {string} label @param {() => Promise<void>} onClick */
function action(label, onClick) {
  const button = el("button", { type: "button", className: "secondary" }, label);
  button.addEventListener("click", () => guarded(onClick));
  return button;
}

function residentOptions() {
  return [...residents].map(([id, name]) => el("option", { value: String(id), translate: false },
    name));
}

async function refresh() {
  /** @type {any[]} */
  const accounts = await api("/users?role=family");
  $("family-rows").replaceChildren(...accounts.map((a) => {
    const pick = el("select", { "aria-label": t("Resident to link to {username}",
      { username: a.username }) },
      ...residentOptions());
    return el("tr", { dataset: { username: a.username } },
      el("td", { translate: false }, a.username), el("td", { translate: false }, a.full_name),
      el("td", {}, ...a.residents.map((/** @type {number} */ rid) => el("span",
        { className: "linked" }, el("span", { translate: false }, residents.get(rid) || `#${rid}`),
        action(t("Unlink"), async () => {
          await api(`/users/${a.id}/residents/${rid}`, { method: "DELETE" });
          await refresh();
        })))),
      el("td", {}, pick, action(t("Link"), async () => {
        await api(`/users/${a.id}/residents/${pick.value}`, { method: "PUT" });
        await refresh();
      })),
      el("td", {}, action(t("New invitation"), () => invite(a.id, a.username))));
  }));
}

/**
 * Show a shown-once text whose \u0000 and \u0001 stand for a username and a secret (a
 * password or an invitation link): those two as data, never translated.
 * @param {string} text the translated sentence with the two markers
 * @param {string} username
 * @param {string} secret
 */
function shownOnce(text, username, secret) {
  $("shown-once").replaceChildren(...text.split(/(\u0000|\u0001)/).map((part) => (
    part === "\u0000" ? el("span", { translate: false }, username)
      : part === "\u0001" ? el("span", { translate: false }, secret) : part)));
}

/** @param {number} id @param {string} username */
async function invite(id, username) {
  const answer = await api(`/users/${id}/invite`, { method: "POST" });
  shownOnce(t("Invitation for {username} (valid until {time}): {link}", { username: "\u0000",
    time: siteTime(answer.expires_at, answer.site_timezone || "UTC"), link: "\u0001" }),
  username, `${location.origin}${answer.path}`);
}

/** @param {HTMLFormElement} form @param {string} how */
async function create(form, how) {
  const values = formValues(form);
  if (!values.resident) {
    say(t("Choose the resident this relative is for."));
    return;
  }
  const answer = await api("/users", { method: "POST", body: {
    username: values.username, full_name: values.full_name || "", role: "family",
    phone: values.phone || null, residents: [Number(values.resident)] } });
  form.reset();
  say("");
  if (how === "invite") await invite(answer.account.id, answer.account.username);
  else {
    shownOnce(t("Temporary password for {username} (shown once): {password}",
      { username: "\u0000", password: "\u0001" }), answer.account.username,
    answer.temporary_password);
  }
  await refresh();
}

startAdminPage(async () => {
  /** @type {any[]} */
  const list = await api("/residents");
  residents = new Map(list.map((r) => [r.id, `${r.full_name} (${r.site_id})`]));
  // An empty first choice: "Create" must never link whoever happens to be first.
  $("new-resident").replaceChildren(el("option", { value: "" }, t("Choose a resident…")),
    ...residentOptions());
  const form = /** @type {HTMLFormElement} */ ($("family-form"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const submitter = /** @type {HTMLButtonElement | null} */ (event.submitter);
    guarded(() => create(form, submitter?.value || "invite"), form);
  });
  await refresh();
});
