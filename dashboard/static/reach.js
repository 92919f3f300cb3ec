// @ts-check
// Reaching a resident from the care worker's phone page (worker.js, visits.js): call the
// resident or their emergency contacts (tel: links, in the ledger's calling order) and open
// their address in the phone's maps app. The page never loads anything from another site:
// these are links the worker taps, handed to the phone's dialler and maps app.
//
// The numbers come from the resident's ledger entry (GET /api/v1/residents/{id}, which a care
// worker may read for the residents of their own site; each read is in the audit trail), read
// when the worker first opens a block of that resident and again after REFRESH_MS; every
// card of that resident is filled in when the answer comes.

import { api, AuthError } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { phrase } from "./phrase.js";

/**
 * What the page needs of a resident's ledger entry.
 * @typedef {object} Contact
 * @property {number} position 1 = call first
 * @property {string} name
 * @property {string} relation
 * @property {string} phone
 * @typedef {object} Reachable
 * @property {number} id
 * @property {string} full_name
 * @property {string | null} address
 * @property {string | null} phone
 * @property {Contact[]} contacts
 */

const REFRESH_MS = 5 * 60 * 1000;  // contacts change rarely; every read is audited

const state = {
  /** @type {Map<number, {at: number, data: Reachable | null, loading: Promise<void> | null}>} */
  residents: new Map(),
  /** @type {Map<string, {node: HTMLDetailsElement, residentId: number, shown: Reachable | null}>} */
  nodes: new Map(),
  /** @type {(message: string) => void} */
  onAuthError: () => {},
};

/** Forget everything (logout); `onAuthError` for the next session's reads. */
export function resetReach(/** @type {(message: string) => void} */ onAuthError = () => {}) {
  state.residents.clear();
  state.nodes.clear();
  state.onAuthError = onAuthError;
}

/**
 * The dialler's form of a ledger phone number (digits and a leading +).
 * @param {string} phone
 * @returns {string}
 */
export function telHref(phone) {
  return `tel:${phone.replace(/[^\d+]/g, "")}`;
}

/**
 * A link that opens `address` in the phone's maps app: Apple Maps' `maps://?q=` on iPhone and
 * iPad (Safari hands a `geo:` link to nothing), the standard `geo:0,0?q=` (RFC 5870 with
 * Android's query) elsewhere, where Android offers every installed maps app.
 * @param {string} address
 * @param {string} userAgent
 * @returns {string}
 */
export function mapsHref(address, userAgent) {
  const query = encodeURIComponent(address.replace(/\s+/g, " ").trim());
  return isApple(userAgent) ? `maps://?q=${query}` : `geo:0,0?q=${query}`;
}

/** @param {string} userAgent @returns {boolean} */
function isApple(userAgent) {
  return /\b(iPhone|iPad|iPod)\b/.test(userAgent);
}

/**
 * The "Call or find the way" block of one card (`key`: the card's own, so each card keeps
 * its block, and whether it is open, across the page's updates). Closed at first, one tap
 * to open, so that a card stays short and the queue and the visits fit one screen. The
 * resident's entry is read when a block of theirs is first opened (not for every card on
 * the page: each read is audited), and renewed after REFRESH_MS while one is open.
 * @param {string} key
 * @param {number} residentId
 * @returns {HTMLDetailsElement}
 */
export function reachNode(key, residentId) {
  let entry = state.nodes.get(key);
  if (!entry || entry.residentId !== residentId) {
    const node = /** @type {HTMLDetailsElement} */ (el("details", { className: "reach" },
      el("summary", { className: "reach-summary" }, t("Call or find the way")),
      el("p", { className: "alert-meta" }, t("Loading the numbers…"))));
    node.dataset.residentId = String(residentId);
    node.addEventListener("toggle", () => { if (node.open) load(residentId); });
    entry = { node, residentId, shown: null };
    state.nodes.set(key, entry);
  }
  const data = state.residents.get(residentId)?.data || null;
  if (data && entry.shown !== data) {
    entry.shown = data;
    fill(entry.node, data);
  }
  if (entry.node.open) load(residentId);
  return entry.node;
}

/**
 * Drop the blocks of the cards of one kind (`prefix` of their keys) no longer shown.
 * @param {string} prefix
 * @param {Set<string>} shown
 */
export function pruneReach(prefix, shown) {
  for (const key of state.nodes.keys()) {
    if (key.startsWith(prefix) && !shown.has(key)) state.nodes.delete(key);
  }
}

/**
 * Read the resident's entry unless it is being read or fresh; fill their blocks with it
 * (or say why not: opening a block again tries again).
 * @param {number} id
 */
function load(id) {
  let cached = state.residents.get(id);
  if (!cached) {
    cached = { at: 0, data: null, loading: null };
    state.residents.set(id, cached);
  }
  const entry = cached;
  if (entry.loading || (entry.data && Date.now() - entry.at < REFRESH_MS)) return;
  entry.loading = api(`/residents/${id}`).then((/** @type {Reachable} */ data) => {
    entry.data = data;
    entry.at = Date.now();
    for (const shown of state.nodes.values()) {
      if (shown.residentId !== id) continue;
      shown.shown = data;
      fill(shown.node, data);
    }
  }).catch((err) => {
    if (err instanceof AuthError) return state.onAuthError(err.message);
    for (const shown of state.nodes.values()) {
      if (shown.residentId === id && !shown.shown) {
        shown.node.replaceChildren(/** @type {Node} */ (shown.node.firstElementChild),
          el("p", { className: "action-message" },
            t("Could not load the numbers: {reason}", { reason: err.message })));
      }
    }
    return undefined;
  }).finally(() => { entry.loading = null; });
}

/** @param {HTMLDetailsElement} node @param {Reachable} data */
function fill(node, data) {
  const contacts = [...data.contacts].sort((a, b) => a.position - b.position);
  const links = [
    data.phone && callLink(data.phone,
      phrase(t("Call {name}"), { name: data.full_name }), "resident"),
    ...contacts.map((c) => callLink(c.phone, c.relation
      ? phrase(t("Call {name} ({relation})"), { name: c.name, relation: c.relation })
      : phrase(t("Call {name}"), { name: c.name }), "contact")),
    data.address && el("a", { className: "reach-link reach-link--map",
      href: mapsHref(data.address, navigator.userAgent) },
    el("span", { className: "reach-label" }, t("Open the address in maps")),
    el("span", { className: "reach-detail", translate: false }, data.address)),
  ].filter(Boolean);
  const list = links.length ? el("div", { className: "reach-links" }, .../** @type {Node[]} */ (links))
    : el("p", { className: "alert-meta" }, t("No phone number or address in the ledger."));
  node.replaceChildren(/** @type {Node} */ (node.firstElementChild), list);
}

/**
 * @param {string} phone
 * @param {(string | Node)[]} label the sentence, its data marked (phrase.js)
 * @param {string} kind
 * @returns {HTMLAnchorElement}
 */
function callLink(phone, label, kind) {
  return el("a", { className: `reach-link reach-link--${kind}`, href: telHref(phone) },
    el("span", { className: "reach-label" }, ...label),
    el("span", { className: "reach-detail", translate: false }, phone));
}
