// @ts-check
// The invitation page (templates/invite.html): the token is in the address's fragment (never
// sent to servers or logs by the browser); POST /auth/invite sets the password once. The
// page's language goes with the request, so a refusal comes back in it.

import { API } from "./api.js";
import { $, $input } from "./dom.js";
import { clearFieldErrors, fieldErrorsOf, showFieldErrors } from "./form_errors.js";
import { lang, t } from "./i18n.js";

const token = location.hash.slice(1);

const form = /** @type {HTMLFormElement} */ ($("invite-form"));
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors(form);
  const resp = await fetch(`${API}/auth/invite`, { method: "POST", cache: "no-store",
    headers: { "Content-Type": "application/json", "Accept-Language": lang },
    body: JSON.stringify({ token, password: $input("new-password").value }) });
  if (!resp.ok) {
    const body = await resp.json().catch(() => null);
    const errors = fieldErrorsOf(body);
    $("invite-message").textContent = errors.length ? showFieldErrors(form, errors).join("; ")
      : body && typeof body.detail === "string" ? body.detail
        : t("HTTP {status}", { status: resp.status });
    return;
  }
  $("invite-form").hidden = true;
  $("invite-done").hidden = false;
});
