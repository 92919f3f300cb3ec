// @ts-check
// A refused form: each message of the API's `errors` ({loc, type, msg}, dashboard/errors.py)
// next to the field it is about. `loc` is ["body", field, ...]; the field is found by its
// `name`, or by a `data-field` naming the API's field when the form's control is named
// otherwise (e.g. the roster's "start" input is the API's `starts_local`). What no field of
// the form takes is returned, for the page's message line.

import { el } from "./dom.js";

/** @typedef {{loc: (string | number)[], msg: string, type?: string}} FieldError */

/**
 * The field-level errors of a refused request's parsed answer (none when it has none).
 * @param {any} body
 * @returns {FieldError[]}
 */
export function fieldErrorsOf(body) {
  return body && Array.isArray(body.errors) ? body.errors : [];
}

/** @param {HTMLFormElement} form */
export function clearFieldErrors(form) {
  for (const node of form.querySelectorAll(".field-error[data-error-for]")) node.remove();
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

/**
 * The API field an error is about: the last name in its loc, e.g. ["body", "phone"] -> "phone".
 * @param {FieldError} error
 * @returns {string}
 */
function fieldOf(error) {
  const names = error.loc.slice(1).filter((part) => typeof part === "string");
  return names.length ? String(names[names.length - 1]) : "";
}

/**
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {HTMLElement | null}
 */
function controlOf(form, name) {
  if (!name) return null;
  const quoted = CSS.escape(name);
  return form.querySelector(`[data-field="${quoted}"]`) || form.querySelector(`[name="${quoted}"]`);
}

/**
 * Show each error next to its field (after the control, inside its label when it has one).
 * @param {HTMLFormElement} form
 * @param {FieldError[]} errors
 * @returns {string[]} the messages no field of the form takes
 */
export function showFieldErrors(form, errors) {
  clearFieldErrors(form);
  /** @type {string[]} */
  const general = [];
  for (const error of errors) {
    const name = fieldOf(error);
    const control = controlOf(form, name);
    if (!control) {
      general.push(error.msg);
      continue;
    }
    control.setAttribute("aria-invalid", "true");
    const note = el("span", { className: "field-error", role: "alert",
      dataset: { errorFor: name } }, error.msg);
    const label = control.closest("label");
    if (label && form.contains(label)) label.append(note);
    else control.after(note);
  }
  return general;
}
