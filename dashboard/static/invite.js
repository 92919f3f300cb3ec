// @ts-check
// The invitation page (templates/invite.html): the token is in the address's fragment (never
// sent to servers or logs by the browser); POST /auth/invite sets the password once.

import { API, detailOf } from "./api.js";
import { $, $input } from "./dom.js";

const token = location.hash.slice(1);

$("invite-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const resp = await fetch(`${API}/auth/invite`, { method: "POST", cache: "no-store",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, password: $input("new-password").value }) });
  if (!resp.ok) {
    $("invite-message").textContent = await detailOf(resp);
    return;
  }
  $("invite-form").hidden = true;
  $("invite-done").hidden = false;
});
