// @ts-check
// A translated sentence with data in it, as page nodes: the data (a resident's name, a phone
// number, a device id) goes into its own <span translate="no">, so that the browser's page
// translation leaves it alone and the Chinese page test (which ignores such elements) can
// tell data from untranslated words. The sentence is ONE catalog text, translated whole:
//   phrase(t("Call {name}"), { name: "Alice Andersen" })

/**
 * The nodes of `translated` (a t() result with its {placeholders} left in), each
 * placeholder replaced by its value marked as data.
 * @param {string} translated
 * @param {Record<string, string | number>} data
 * @returns {(string | HTMLSpanElement)[]}
 */
export function phrase(translated, data) {
  /** @type {(string | HTMLSpanElement)[]} */
  const parts = [];
  let last = 0;
  for (const match of translated.matchAll(/\{(\w+)\}/g)) {
    const name = match[1];
    if (!Object.prototype.hasOwnProperty.call(data, name)) continue;
    const at = /** @type {number} */ (match.index);
    if (at > last) parts.push(translated.slice(last, at));
    const span = document.createElement("span");
    span.translate = false;
    span.textContent = String(data[name]);
    parts.push(span);
    last = at + match[0].length;
  }
  if (last < translated.length) parts.push(translated.slice(last));
  return parts;
}
