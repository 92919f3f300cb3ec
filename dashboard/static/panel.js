// @ts-check
// A side panel of the duty screen (visits overdue, the shift in numbers): shown to staff
// while the app view is visible (after login), refreshed on a fixed period while shown, and
// emptied when the app view hides (logout), so the next person never sees the last one's data.

import { $ } from "./dom.js";

/**
 * Follow the app view's visibility for one panel.
 * @param {object} spec
 * @param {string} spec.panel the panel's element id
 * @param {() => boolean} spec.allowed whether this session may see the panel at all
 * @param {() => void} spec.refresh load and paint the panel
 * @param {() => void} spec.clear forget what is painted
 * @param {number} spec.everyMs the refresh period
 */
export function followAppView({ panel, allowed, refresh, clear, everyMs }) {
  /** @type {ReturnType<typeof setInterval> | null} */
  let timer = null;
  const follow = () => {
    const may = allowed();
    $(panel).hidden = !may;
    const shown = !$("app-view").hidden && may;
    if (shown && timer === null) {
      refresh();
      timer = setInterval(refresh, everyMs);
    } else if (!shown && timer !== null) {
      clearInterval(timer);
      timer = null;
      clear();
    }
  };
  new MutationObserver(follow).observe($("app-view"), { attributes: true, attributeFilter: ["hidden"] });
  follow();
}
