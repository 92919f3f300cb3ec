// @ts-check
// What every administration page does (templates/admin.html): log in (common.js's form,
// one-time code included), show the page, log out, and turn API errors into a message or,
// for an ended session, back to the login form.

import { ApiError, AuthError, clearSession, endSession, loadSession } from "./api.js";
import { showLogin, showRoleLinks, showWho, wireLogin } from "./common.js";
import { $, $button } from "./dom.js";
import { clearFieldErrors, fieldErrorsOf, showFieldErrors } from "./form_errors.js";

/** @typedef {import("./api.js").Session} Session */

/**
 * Start a page: `onReady(session)` runs once logged in (now, or after the login form).
 * @param {(session: Session) => Promise<void>} onReady
 */
export function startAdminPage(onReady) {
  const enter = (/** @type {Session} */ session) => {
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    showWho($("who"), session);
    // Only the links this role may use: a care worker or a family member on "My account"
    // sees their own page, not the administration.
    showRoleLinks(session);
    guarded(() => onReady(session));
  };
  wireLogin(enter);
  $button("logout-button").addEventListener("click", () => leave(""));
  const session = loadSession();
  if (session) enter(session);
  else showLogin();
}

/** Back to the login form, ending the session on the server too. @param {string} message */
export function leave(message) {
  endSession();
  clearSession();
  showLogin(message);
}

/** Show a message above the page ("" clears it). @param {string} text */
export function say(text) {
  $("page-message").textContent = text;
}

/**
 * Run an action; an ended session goes back to login, any other failure becomes the page
 * message. When the action submits `form`, a refusal's field-level errors are shown next to
 * their fields (form_errors.js) and only the rest in the page message. Resolves to the
 * action's value, or undefined when it failed.
 * @template T
 * @param {() => Promise<T>} action
 * @param {HTMLFormElement} [form]
 * @returns {Promise<T | undefined>}
 */
export async function guarded(action, form) {
  if (form) clearFieldErrors(form);
  try {
    const value = await action();
    return value;
  } catch (err) {
    const errors = err instanceof ApiError ? fieldErrorsOf(err.body) : [];
    if (err instanceof AuthError) leave(err.message);
    else if (form && errors.length) say(showFieldErrors(form, errors).join("; "));
    else if (err instanceof ApiError && err.status === 403) say(err.message);
    else say(err.message || String(err));
    return undefined;
  }
}

/**
 * The form's fields as an object of trimmed strings (empty ones left out).
 * @param {HTMLFormElement} form
 * @returns {Record<string, string>}
 */
export function formValues(form) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [name, value] of new FormData(form).entries()) {
    const text = String(value).trim();
    if (text) out[name] = text;
  }
  return out;
}
