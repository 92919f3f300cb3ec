// @ts-check
// The duty screen's "Visits overdue" panel (index.html): residents whose regular visit
// (巡访关爱) is late by their plan, most overdue first, with who is going. A module of its
// own, loaded by its own <script> line: it follows the page's login through the shared
// session (api.js) and the app view's visibility, and never touches the alert screen.

import { api, AuthError, loadSession } from "./api.js";
import { $, dataSpan, el, fill } from "./dom.js";
import { t } from "./i18n.js";
import { followAppView } from "./panel.js";

/**
 * A resident due a visit, as GET /api/v1/visits/due returns it.
 * @typedef {object} Due
 * @property {number} resident_id
 * @property {string} resident_name
 * @property {string} site_id
 * @property {string} due_on
 * @property {number} days_overdue
 * @property {string | null} last_visit_on the last visit's date at the site
 * @property {number | null} open_visit_id
 * @property {string | null} open_visit_assignee
 */

const REFRESH_MS = 30000;

/** @param {Due} due @returns {HTMLLIElement} */
function row(due) {
  const late = due.days_overdue === 1 ? t("1 day overdue")
    : t("{count} days overdue", { count: due.days_overdue });
  /** @type {(Node | string)[]} */
  let who = [t("Not assigned")];
  if (due.open_visit_id !== null) {
    who = due.open_visit_assignee
      ? fill(t("{name} is going"), { name: dataSpan(due.open_visit_assignee) })
      : [t("Planned, not assigned")];
  }
  const site = dataSpan(due.site_id);
  const when = due.last_visit_on
    ? fill(t("due {due} · last visit {last} · site {site}"),
      { due: due.due_on, last: due.last_visit_on, site })
    : fill(t("due {due} · never visited · site {site}"), { due: due.due_on, site });
  return el("li", { className: "overdue-visit", dataset: { residentId: String(due.resident_id) } },
    el("span", { className: "overdue-name", translate: false }, due.resident_name),
    el("span", { className: "overdue-late" }, late),
    el("span", { className: "muted" }, ...when),
    el("span", { className: due.open_visit_id === null ? "state-bad" : "state-ok" }, ...who));
}

async function refresh() {
  if (!loadSession() || $("app-view").hidden) return;
  try {
    /** @type {Due[]} */
    const due = await api("/visits/due?overdue=true");
    $("overdue-list").replaceChildren(...due.map(row));
    $("overdue-count").textContent = String(due.length);
    $("overdue-empty").hidden = due.length > 0;
    $("overdue-message").textContent = "";
  } catch (err) {
    if (err instanceof AuthError) return;  // the page itself goes back to the login form
    $("overdue-message").textContent = t("Could not load overdue visits: {error}",
      { error: /** @type {Error} */ (err).message });
  }
}

followAppView({
  panel: "overdue-panel",
  allowed: () => {
    const session = loadSession();
    return session !== null && session.role !== "family";  // family: their own page
  },
  refresh,
  clear: () => $("overdue-list").replaceChildren(),
  everyMs: REFRESH_MS,
});
