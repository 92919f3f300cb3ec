// @ts-check
// "My account" (templates/account.html): change my password; enrol a TOTP second factor
// (QR code from the server). A session with a temporary password or a required second
// factor is sent here and may use only this until it is done. My notification channels
// (GET /me/channels), each with "Send test" (POST /me/channels/{id}/test: the platform's own
// sender, so "delivered" means the receiver accepted it) and "Remove"; an e-mail can be added.

import { formValues, guarded, startAdminPage } from "./admin.js";
import { api, loadSession, saveSession } from "./api.js";
import { $, $button, $input, el } from "./dom.js";
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
  const test = el("button", { type: "button", className: "secondary" }, "Send test");
  test.addEventListener("click", () => guarded(async () => {
    result.textContent = "Sending…";
    const answer = await api(`/me/channels/${channel.id}/test`, { method: "POST" });
    result.textContent = answer.sent ? "Delivered." : `Not delivered: ${answer.detail}`;
  }));
  const remove = el("button", { type: "button", className: "secondary" }, "Remove");
  remove.addEventListener("click", () => guarded(async () => {
    await api(`/me/channels/${channel.id}`, { method: "DELETE" });
    await loadChannels();
  }));
  const where = channel.kind === "webpush" ? "" : ` ${channel.target}`;
  return el("li", { dataset: { id: String(channel.id), kind: channel.kind } },
    el("span", { className: "channel-what" },
      `${channelLabel(channel.kind)}${where} · ${severityLabel(channel.min_severity)}`),
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
  if (session.must_change_password) return "Choose your own password before you continue.";
  if (session.totp_enrolment_required) {
    return "Your role needs a second factor: set up an authenticator app before you continue.";
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
  $("password-message").textContent = "Password changed.";
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
  $("totp-state").textContent = "The second factor is on: every login asks for a code.";
  $button("totp-start").hidden = true;
  noteDone({ totp_enrolment_required: false });
}

startAdminPage(async () => {
  $("must-do").textContent = mustDo();
  const me = await api("/me");
  $("totp-state").textContent = `Logged in as ${me.username}.`;
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
  if (!mustDo()) await loadChannels();  // a restricted session may only finish its steps
});
