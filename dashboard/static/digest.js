// @ts-check
// The duty screen's "Daily digest" panel (index.html): residents whose last nights, taken
// together, look unlike their own usual (issue 15's outlier model, written once a day by the
// jobs process), each with what differs most in words and a link to the resident's page.
// Never an alarm: no sound, no count in the alert list. Shown to duty officers (their site)
// and administrators (the page's `?site=`); the words come from the server (GET
// /api/v1/digest/outliers), never from here. A module of its own like overdue.js.

import { api, AuthError, loadSession } from "./api.js";
import { $, el } from "./dom.js";
import { followAppView } from "./panel.js";

/**
 * @typedef {object} Reason
 * @property {string} feature
 * @property {string} text e.g. "Rise time 09:40 vs usual 07:10"
 */
/**
 * @typedef {object} DigestResident
 * @property {number} resident_id
 * @property {string} resident_name
 * @property {Reason[]} reasons
 */
/**
 * @typedef {object} Digest
 * @property {string | null} day
 * @property {string} summary
 * @property {DigestResident[]} residents
 */

const REFRESH_MS = 5 * 60 * 1000;  // written once a day: a slow refresh is plenty
const READERS = new Set(["admin", "duty_officer"]);

function site() {
  const session = loadSession();
  return new URLSearchParams(location.search).get("site") || (session && session.site_id) || "";
}

/**
 * A resident of the digest, linking to their page, whose Daily routine chart opens on the
 * feature that differs most (the first reason).
 * @param {DigestResident} r @returns {HTMLLIElement}
 */
function row(r) {
  const query = new URLSearchParams({ resident: String(r.resident_id) });
  if (r.reasons.length) query.set("feature", r.reasons[0].feature);
  return el("li", { className: "digest-resident", dataset: { residentId: String(r.resident_id) } },
    el("a", { className: "digest-name", href: `/admin?${query}` }, r.resident_name),
    el("ul", { className: "digest-reasons" },
      ...r.reasons.map((reason) => el("li", { dataset: { feature: reason.feature } }, reason.text))));
}

async function refresh() {
  const where = site();
  if (!loadSession() || $("app-view").hidden || !where) return;
  try {
    /** @type {Digest} */
    const digest = await api(`/digest/outliers?${new URLSearchParams({ site: where })}`);
    $("digest-list").replaceChildren(...digest.residents.map(row));
    $("digest-count").textContent = String(digest.residents.length);
    $("digest-day").textContent = digest.day || "";
    $("digest-summary").textContent = digest.summary;
    $("digest-message").textContent = "";
  } catch (err) {
    if (err instanceof AuthError) return;  // the page itself goes back to the login form
    $("digest-message").textContent = /** @type {Error} */ (err).message;
  }
}

followAppView({
  panel: "digest-panel",
  allowed: () => {
    const session = loadSession();
    return session !== null && READERS.has(session.role) && site() !== "";
  },
  refresh,
  clear: () => {
    $("digest-list").replaceChildren();
    $("digest-summary").textContent = "";
    $("digest-day").textContent = "";
    $("digest-count").textContent = "0";
  },
  everyMs: REFRESH_MS,
});
