// @ts-check
// The pages' own texts in the reader's language. A text is written in English, marked
// t("…") with a plain string literal (pybabel extracts it into kernel/locale/messages.pot;
// docs/i18n.md), and looked up in the translations the server embeds in every page
// (<script id="catalog" type="application/json">, dashboard/language.py). Placeholders
// are named, {name}, and filled in after translating, so a translator sees the sentence.

/** @returns {Record<string, string>} */
function embedded() {
  const block = document.getElementById("catalog");
  return block && block.textContent ? JSON.parse(block.textContent) : {};
}

const CATALOG = embedded();

/** The page's language (BCP 47), as the server chose it: "en" or "zh-CN". */
export const lang = document.documentElement.lang || "en";

/** The cookie that carries a person's own language choice to every page they open. */
const COOKIE = "eldercare_lang";

/**
 * `message` in the page's language, with `{name}` placeholders filled from `params`.
 * @param {string} message the English text (a string literal, so it can be extracted)
 * @param {Record<string, string | number>} [params]
 * @returns {string}
 */
export function t(message, params) {
  const text = CATALOG[message] || message;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole);
}

/**
 * Follow a person's language setting: remember it for this browser and, when the page is
 * in another language, reload it in theirs. Returns true when the page is reloading.
 * @param {string | null | undefined} chosen "en", "zh-CN", or null (follow the browser)
 * @returns {boolean}
 */
export function followLanguage(chosen) {
  if (chosen) {
    document.cookie = `${COOKIE}=${encodeURIComponent(chosen)}; path=/; max-age=31536000; samesite=lax`;
  } else {
    document.cookie = `${COOKIE}=; path=/; max-age=0; samesite=lax`;
  }
  if (chosen && chosen !== lang) {
    location.reload();
    return true;
  }
  return false;
}
