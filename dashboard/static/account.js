// @ts-check
// "My account" (templates/account.html): change my password; enrol a TOTP second factor
// (QR code from the server). A session with a temporary password or a required second
// factor is sent here and may use only this until it is done. My notification channels
// (GET /me/channels), each with "Send test" (POST /me/channels/{id}/test: the platform's own
// sender, so "delivered" means the receiver accepted it) and "Remove"; an e-mail can be added.
// My language (GET/PUT /me/language): the pages' and my notifications' language, or "follow
// my browser"; the choice is remembered in this browser (i18n.js followLanguage) and the
// page reloads in it.

import { formValues, guarded, startAdminPage } from "./admin.js";
import { API, AuthError, ApiError, api, detailOf, loadSession, saveSession } from "./api.js";
import { $, $button, $input, el } from "./dom.js";
import { followLanguage, lang, t } from "./i18n.js";
import { channelLabel, severityLabel } from "./vocabulary.js";

/**
 * One of my channels as GET /me/channels returns it.
 * @typedef {object} Channel
 * @property {number} id
 * @property {string} kind
 * @property {string} target
 * @property {string} min_severity
 * @property {boolean} active
 */

/** @param {Channel} channel @returns {HTMLLIElement} */
function channelItem(channel) {
  const result = el("span", { className: "channel-test-result", role: "status" });
  const test = el("button", { type: "button", className: "secondary" }, t("Send test"));
  test.addEventListener("click", () => guarded(async () => {
    result.textContent = t("Sending…");
    const answer = await api(`/me/channels/${channel.id}/test`, { method: "POST" });
    result.textContent = answer.sent ? t("Delivered.")
      : t("Not delivered: {detail}", { detail: answer.detail });
  }));
  const remove = el("button", { type: "button", className: "secondary" }, t("Remove"));
  remove.addEventListener("click", () => guarded(async () => {
    await api(`/me/channels/${channel.id}`, { method: "DELETE" });
    await loadChannels();
  }));
  // The address is data (never translated); kind and severity are the vocabulary's words.
  const where = channel.kind === "webpush" ? null
    : el("span", { translate: false }, channel.target);
  return el("li", { dataset: { id: String(channel.id), kind: channel.kind } },
    el("span", { className: "channel-what" }, channelLabel(channel.kind), where ? " " : "",
      where, ` · ${severityLabel(channel.min_severity)}`),
    test, remove, result);
}

async function loadChannels() {
  /** @type {Channel[]} */
  const channels = await api("/me/channels");
  $("channels-list").replaceChildren(...channels.map(channelItem));
  $("channels-empty").hidden = channels.length > 0;
}

async function addEmail(/** @type {HTMLFormElement} */ form) {
  await api("/me/channels", { method: "POST", body: { kind: "email",
                                                      target: formValues(form).target } });
  form.reset();
  $("channels-message").textContent = "";
  await loadChannels();
}

/** What the session still has to do, from the login answer. */
function mustDo() {
  const session = loadSession();
  if (!session) return "";
  if (session.must_change_password) return t("Choose your own password before you continue.");
  if (session.totp_enrolment_required) {
    return t("Your role needs a second factor: set up an authenticator app before you continue.");
  }
  return "";
}

/** Remember in the tab's session that a step is done. @param {object} done */
function noteDone(done) {
  const session = loadSession();
  if (session) saveSession({ ...session, ...done });
  $("must-do").textContent = mustDo();
}

async function changePassword(/** @type {HTMLFormElement} */ form) {
  const values = formValues(form);
  await api("/me/password", { method: "POST", body: {
    current_password: values.current_password, new_password: values.new_password } });
  form.reset();
  $("password-message").textContent = t("Password changed.");
  noteDone({ must_change_password: false });
}

async function startTotp() {
  const enrol = await api("/me/totp", { method: "POST" });
  $input("totp-code").value = "";
  /** @type {HTMLImageElement} */ ($("totp-qr")).src = enrol.qr_data_uri;
  $("totp-secret").textContent = enrol.secret;
  $("totp-enrol").hidden = false;
  $input("totp-code").focus();
}

async function confirmTotp() {
  await api("/me/totp/confirm", { method: "POST", body: { code: $input("totp-code").value } });
  $("totp-enrol").hidden = true;
  $("totp-state").textContent = t("The second factor is on: every login asks for a code.");
  $button("totp-start").hidden = true;
  noteDone({ totp_enrolment_required: false });
}

/**
 * A translated sentence with a data element in place of its placeholder (the data keeps
 * its translate="no"; the words around it follow the page's language).
 * @param {string} text the translated sentence
 * @param {string} placeholder e.g. "{username}"
 * @param {HTMLElement} node
 * @returns {(string | HTMLElement)[]}
 */
function sentence(text, placeholder, node) {
  const at = text.indexOf(placeholder);
  if (at < 0) return [text];
  return [text.slice(0, at), node, text.slice(at + placeholder.length)];
}

/**
 * My language as GET/PUT /me/language answer it.
 * @typedef {{language: string, chosen: boolean,
 *   languages: {value: string, label: string}[]}} MyLanguage
 */

/** The browser's own languages as an Accept-Language header ("follow my browser"). */
function browserLanguages() {
  const tags = navigator.languages && navigator.languages.length ? navigator.languages
    : [navigator.language || "en"];
  return tags.map((tag, i) => (i ? `${tag};q=${Math.max(0.1, 1 - i / 10).toFixed(1)}` : tag))
    .join(",");
}

/** @param {MyLanguage} mine */
function paintLanguage(mine) {
  const select = /** @type {HTMLSelectElement} */ ($("language-choice"));
  // Each language in its own words (English, 简体中文): data, never translated.
  select.replaceChildren(el("option", { value: "" }, t("Follow my browser")),
    ...mine.languages.map((l) => el("option", { value: l.value, translate: false }, l.label)));
  select.value = mine.chosen ? mine.language : "";
  $("language-panel").hidden = false;
}

async function loadLanguage() {
  paintLanguage(await api("/me/language"));
}

/**
 * Save my choice. "Follow my browser" is sent with the browser's own languages (the pages
 * send their current language with every request, which is not what the browser asks for).
 */
async function chooseLanguage() {
  const choice = /** @type {HTMLSelectElement} */ ($("language-choice")).value || null;
  const session = loadSession();
  if (!session) throw new AuthError(t("Please log in."));
  const resp = await fetch(`${API}/me/language`, { method: "PUT", cache: "no-store",
    headers: { Authorization: `Bearer ${session.access_token}`,
      "Content-Type": "application/json",
      "Accept-Language": choice ? lang : browserLanguages() },
    body: JSON.stringify({ language: choice }) });
  if (resp.status === 401) throw new AuthError(await detailOf(resp));
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    throw new ApiError(body && typeof body.detail === "string" ? body.detail
      : t("The server answered {status}.", { status: resp.status }), resp.status, body);
  }
  /** @type {MyLanguage} */
  const mine = body;
  saveSession({ ...session, language: mine.language, language_chosen: mine.chosen });
  paintLanguage(mine);
  $("language-message").textContent = t("Saved.");
  // Remember it in this browser; reload when the page is in another language (following
  // the browser again: the browser's language, which the server negotiates on reload).
  const reloading = followLanguage(mine.chosen ? mine.language : null);
  if (!reloading && mine.language !== lang) location.reload();
}

startAdminPage(async () => {
  $("must-do").textContent = mustDo();
  const me = await api("/me");
  $("totp-state").replaceChildren(...sentence(t("Logged in as {username}."), "{username}",
    el("span", { translate: false }, me.username)));
  const form = /** @type {HTMLFormElement} */ ($("password-form"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => changePassword(form), form);
  });
  $button("totp-start").addEventListener("click", () => guarded(startTotp));
  const totpForm = /** @type {HTMLFormElement} */ ($("totp-form"));
  totpForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(confirmTotp, totpForm);
  });
  const channelForm = /** @type {HTMLFormElement} */ ($("channel-form"));
  channelForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => addEmail(channelForm), channelForm);
  });
  const languageForm = /** @type {HTMLFormElement} */ ($("language-form"));
  languageForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(chooseLanguage, languageForm);
  });
  if (!mustDo()) {  // a restricted session may only finish its steps
    await loadLanguage();
    await loadChannels();
  }
});
