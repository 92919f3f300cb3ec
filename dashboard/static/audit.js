// @ts-check
// The administrators' audit trail page (/admin/audit): search GET /api/v1/audit with
// filters, page back in time with the Link header (keyset paging), export the same search
// as CSV (GET /api/v1/audit/export; the export is itself recorded). Labels of actions and
// results come from the vocabulary; the page's own words are in templates/audit.html.

import { API, AuthError, clearSession, detailOf, endSession, loadSession } from "./api.js";
import { wireLogin, showLogin, showWho } from "./common.js";
import { $, $button, $input, el } from "./dom.js";
import { lang, t } from "./i18n.js";
import { noteServerClock, siteTime } from "./time.js";
import { auditActionLabel, auditOutcomeLabel, vocabulary } from "./vocabulary.js";

/**
 * One audit record as the API returns it.
 * @typedef {object} AuditEntry
 * @property {number} id
 * @property {string} at
 * @property {number | null} actor_id
 * @property {string} actor
 * @property {string | null} address
 * @property {string} action
 * @property {string | null} target_type
 * @property {string | null} target_id
 * @property {number | null} resident_id
 * @property {string} outcome
 * @property {Record<string, unknown>} detail
 * @property {string} timezone the IANA zone its time is shown in (the site's)
 */

/** @type {{next: string | null, shown: number}} */
const state = { next: null, shown: 0 };

/** @param {HTMLSelectElement} select @param {{value: string, label: string}[]} terms */
function fill(select, terms) {
  for (const term of terms) select.append(el("option", { value: term.value }, term.label));
}

/** @returns {HTMLSelectElement} @param {string} id */
function $select(id) {
  return /** @type {HTMLSelectElement} */ ($(id));
}

/** The search's query string from the form ("" fields left out; times in UTC). */
function query() {
  const params = new URLSearchParams();
  const actor = $input("audit-actor").value.trim();
  if (actor) params.set("actor", actor);
  const resident = $input("audit-resident").value.trim();
  if (resident) params.set("resident", resident);
  for (const id of ["audit-action", "audit-outcome"]) {
    const select = $select(id);
    if (select.value) params.set(select.name, select.value);
  }
  for (const id of ["audit-since", "audit-until"]) {
    const input = $input(id);
    if (input.value) params.set(input.name, new Date(input.value).toISOString());
  }
  return params.toString();
}

/**
 * GET with the session's token; the Response (for its Link header or body).
 * @param {string} path
 * @returns {Promise<Response>}
 */
async function get(path) {
  const session = loadSession();
  if (!session) throw new AuthError(t("Please log in."));
  const resp = await fetch(API + path, {
    headers: { Authorization: `Bearer ${session.access_token}`, "Accept-Language": lang },
    cache: "no-store",
  });
  noteServerClock(resp);
  if (resp.status === 401) throw new AuthError(await detailOf(resp));
  if (!resp.ok) throw new Error(await detailOf(resp));
  return resp;
}

/** The rel="next" URL of a Link header, relative to /api/v1. @param {string | null} link */
function nextOf(link) {
  const match = link ? /<([^>]+)>;\s*rel="next"/.exec(link) : null;
  return match ? match[1].replace(API, "") : null;
}

/** @param {AuditEntry} entry @returns {HTMLTableRowElement} */
function row(entry) {
  const target = [entry.target_type, entry.target_id].filter(Boolean).join(" ");
  return el("tr", { className: `outcome-${entry.outcome}`, dataset: { id: String(entry.id) } },
    el("td", {}, el("time", { dateTime: entry.at, title: entry.timezone, translate: false },
      siteTime(entry.at, entry.timezone))),
    el("td", { className: "audit-actor", translate: false }, entry.actor),
    el("td", { translate: false }, entry.address || ""),
    el("td", { className: "audit-action", dataset: { action: entry.action } },
      auditActionLabel(entry.action)),
    el("td", { translate: false }, target),
    el("td", {}, entry.resident_id === null ? "" : String(entry.resident_id)),
    el("td", { className: "audit-outcome" }, auditOutcomeLabel(entry.outcome)),
    el("td", { className: "audit-detail", translate: false }, JSON.stringify(entry.detail)));
}

/** @param {string} path @param {boolean} append */
async function load(path, append) {
  $("audit-message").textContent = "";
  try {
    const resp = await get(path);
    /** @type {AuditEntry[]} */
    const entries = await resp.json();
    const body = $("audit-rows");
    if (!append) {
      body.replaceChildren();
      state.shown = 0;
    }
    body.append(...entries.map(row));
    state.shown += entries.length;
    state.next = nextOf(resp.headers.get("Link"));
    $("audit-count").textContent = String(state.shown);
    $("audit-empty").hidden = state.shown > 0;
    $button("audit-more").hidden = state.next === null;
  } catch (err) {
    handle(err);
  }
}

/** @param {unknown} err */
function handle(err) {
  if (err instanceof AuthError) {
    logout(err.message);
    return;
  }
  $("audit-message").textContent = err instanceof Error ? err.message : String(err);
}

async function exportCsv() {
  try {
    const resp = await get(`/audit/export?${query()}`);
    const url = URL.createObjectURL(await resp.blob());
    const link = el("a", { href: url, download: "audit.csv" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    handle(err);
  }
}

/** @param {import("./api.js").Session} session */
function enter(session) {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  showWho($("who"), session);
  $("feed-status").hidden = true;
  load(`/audit?${query()}`, false);
}

/** @param {string} [message] */
function logout(message = "") {
  endSession();
  clearSession();
  $("audit-rows").replaceChildren();
  showLogin(message);
}

function start() {
  fill($select("audit-action"), vocabulary.audit_actions);
  fill($select("audit-outcome"), vocabulary.audit_outcomes);
  wireLogin(enter);
  $("audit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load(`/audit?${query()}`, false);
  });
  $button("audit-more").addEventListener("click", () => {
    if (state.next) load(state.next, true);
  });
  $button("audit-export").addEventListener("click", exportCsv);
  $button("logout-button").addEventListener("click", () => logout());
  const session = loadSession();
  if (session) enter(session);
  else showLogin();
}

start();
