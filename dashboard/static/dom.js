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
