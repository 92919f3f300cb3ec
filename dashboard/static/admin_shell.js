// @ts-check
// The admin pages' login and logout around a page without a live feed (admin_devices.js,
// admin_import.js): the shared login form, then the page's own start().

import { clearSession, endSession, loadSession } from "./api.js";
import { showLogin, whoLine, wireLogin } from "./common.js";
import { $ } from "./dom.js";

/**
 * Show the page for a stored or new session; `start` loads its data.
 * @param {() => void} start
 */
export function adminPage(start) {
  const enter = (/** @type {import("./api.js").Session} */ session) => {
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("who").textContent = whoLine(session);
    $("feed-status").textContent = "";
    start();
  };
  wireLogin(enter);
  $("logout-button").addEventListener("click", () => leave(""));
  const session = loadSession();
  if (session) enter(session);
  else showLogin();
}

/** @param {string} message */
export function leave(message) {
  endSession();
  clearSession();
  showLogin(message);
}
