// @ts-check
// Building the pages: data is only ever inserted as text, never as HTML.

import { ago } from "./time.js";

/**
 * The element with this id; the pages' templates always have it.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`The page has no element #${id}`);
  return node;
}

/** @param {string} id @returns {HTMLInputElement} */
export function $input(id) {
  return /** @type {HTMLInputElement} */ ($(id));
}

/** @param {string} id @returns {HTMLButtonElement} */
export function $button(id) {
  return /** @type {HTMLButtonElement} */ ($(id));
}

/** @typedef {Node | string | number | null | undefined | false} Child */

/**
 * el("p", {className: "x"}, "text", childNode) -> element; strings become text nodes.
 * Data (names, addresses, ids, free text) goes in an element with `translate: false`
 * (the attribute translate="no": a translator, human or machine, leaves it as it is).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [props] properties of the element (or attributes), `dataset`
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) /** @type {any} */ (node)[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * A span that says how long ago `iso` was, kept current by refreshAges().
 * @param {string} iso
 * @param {string} [className]
 * @returns {HTMLSpanElement}
 */
export function ageSpan(iso, className = "") {
  return el("span", { className, dataset: { since: iso } }, ago(iso));
}

export function refreshAges() {
  for (const span of document.querySelectorAll("[data-since]")) {
    if (span instanceof HTMLElement) span.textContent = ago(span.dataset.since || "");
  }
}

/**
 * Make `container`'s children exactly `nodes` (in order), moving only what is out of
 * place, so a half-filled form or a focused button survives live updates.
 * @param {Element} container
 * @param {Element[]} nodes
 */
export function reconcile(container, nodes) {
  nodes.forEach((node, i) => {
    const at = container.children[i];
    if (at !== node) container.insertBefore(node, at || null);
  });
  while (container.children.length > nodes.length) container.lastElementChild?.remove();
}

/**
 * A span showing data as it is (a name, an address, an id): translate="no".
 * @param {string | number | null | undefined} text
 * @param {string} [className]
 * @returns {HTMLSpanElement}
 */
export function dataSpan(text, className = "") {
  return el("span", { className, translate: false }, text === null || text === undefined
    ? "" : String(text));
}

/**
 * A translated sentence as nodes, its {placeholders} filled from `params`: a Node (a data
 * span) goes in as it is, anything else as text. t("Assigned to {name}") keeps {name}, so
 * `fill(t("Assigned to {name}"), { name: dataSpan(who) })` marks only the name as data.
 * @param {string} text
 * @param {Record<string, Node | string | number>} params
 * @returns {(Node | string)[]}
 */
export function fill(text, params) {
  /** @type {(Node | string)[]} */
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(/\{(\w+)\}/g)) {
    const index = match.index || 0;
    if (!Object.prototype.hasOwnProperty.call(params, match[1])) continue;
    if (index > last) nodes.push(text.slice(last, index));
    const value = params[match[1]];
    nodes.push(value instanceof Node ? value : String(value));
    last = index + match[0].length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}
