"""Every page in Simplified Chinese shows no untranslated text.

Each page is opened in a Chinese browser (Playwright's `locale` sends Accept-Language
zh-CN), logged in as someone who uses it, and read whole once its data has arrived: every
text node and every title, aria-label, placeholder and alt attribute — hidden ones too, since
a dialog or an error line shown later is written into the page already. Data is not
translated: names, addresses, usernames, device ids and notes sit in elements marked
`translate="no"` (the HTML attribute that also keeps browser translators off them), which
this test skips. Anything else with a Latin word, other than the few acronyms Chinese
screens use as they are, is a text someone forgot to mark or translate (docs/i18n.md).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.live import DESKTOP, PHONE, TOUCH, WALL, Screenshots, browser_page, log_in
from tests.support.zh import ALLOWED_LATIN

pytestmark = [pytest.mark.browser]

ALLOWED = ALLOWED_LATIN
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")
ZH = {"locale": "zh-CN"}

# Counts the page's requests in flight (the live streams stay open and are not counted), and
# lists what a reader would see that is not Chinese.
_PROBE = """
(() => {
  let pending = 0;
  const fetch0 = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.includes("/stream")) return fetch0(input, init);
    pending += 1;
    return fetch0(input, init).then(
      (resp) => resp.clone().arrayBuffer().then(() => resp, () => resp)
        .finally(() => { pending -= 1; }),
      (err) => { pending -= 1; throw err; });
  };
  const ATTRS = ["title", "aria-label", "placeholder", "alt"];
  const FORMAT = /^(YYYY-MM-DD|HH:MM|YYYY-MM-DD HH:MM|[A-Za-z]+\\/[A-Za-z_]+)$/;
  const skipped = (el) => el.closest('[translate="no"], script, style, noscript, template');
  window.__eldercarePending = () => pending;
  window.__eldercareTexts = () => {
    const out = [document.title];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      if (node.parentElement && !skipped(node.parentElement)) out.push(node.textContent);
    }
    // An accessible name often repeats data shown beside it ("SOS call, Alice Andersen"):
    // the page's data (the texts marked translate="no") is taken out of attributes first.
    const data = [...document.querySelectorAll('[translate="no"]')]
      .map((el) => (el.textContent || "").trim()).filter((t) => t)
      .sort((a, b) => b.length - a.length);
    const withoutData = (text) => data.reduce((t, d) => t.split(d).join(" "), text);
    for (const el of document.body.querySelectorAll(ATTRS.map((a) => `[${a}]`).join(","))) {
      if (skipped(el)) continue;
      for (const a of ATTRS) {
        const value = el.getAttribute(a);
        if (!value) continue;
        // A placeholder shows an example of data or a format (例如 north, YYYY-MM-DD):
        // written for Chinese readers when it has Chinese words or is only a format.
        if (a === "placeholder" && (/[\u4e00-\u9fff]/.test(value) || FORMAT.test(value))) {
          continue;
        }
        out.push(withoutData(value));
      }
    }
    for (const el of document.body.querySelectorAll("input[type=submit], input[type=button]")) {
      if (!skipped(el) && el.value) out.push(el.value);
    }
    return out.map((t) => t.replace(/\\s+/g, " ").trim()).filter((t) => t);
  };
})();
"""


def untranslated(texts: list[str]) -> list[str]:
    """The texts with a Latin word that is not an allowed acronym."""
    return sorted({text for text in texts
                   if any(word not in ALLOWED for word in LATIN_WORD.findall(text))})


def read_when_settled(page: Any) -> list[str]:
    """The page's texts once the app view shows and no request is in flight."""
    page.wait_for_function("() => window.__eldercarePending && window.__eldercarePending() "
                           "=== 0", timeout=20_000)
    return list(page.evaluate("() => window.__eldercareTexts()"))


def check(page: Any, screenshot: Screenshots, name: str) -> None:
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    found = untranslated(read_when_settled(page))
    screenshot(page, name)
    assert found == [], f"{name}: {len(found)} untranslated texts: {found[:40]}"


# (path, who logs in, viewport, extra context). Every page of dashboard/app.py.
PAGES: list[tuple[str, str | None, Any, dict[str, Any]]] = [
    ("/", None, WALL, {}),  # the login form
    ("/", "duty-north", WALL, {}),
    ("/worker", "care-north", PHONE, TOUCH),
    ("/family", "family-alice", PHONE, TOUCH),
    ("/admin", "admin", DESKTOP, {}),
    ("/admin/staff", "admin", DESKTOP, {}),
    ("/admin/roster", "admin", DESKTOP, {}),
    ("/admin/family", "admin", DESKTOP, {}),
    ("/admin/devices", "admin", DESKTOP, {}),
    ("/admin/import", "admin", DESKTOP, {}),
    ("/admin/audit", "admin", DESKTOP, {}),
    ("/admin/notifications", "admin", DESKTOP, {}),
    ("/reports/answer-times", "duty-north", DESKTOP, {}),
    ("/account", "care-north", DESKTOP, {}),
    ("/invite", None, PHONE, TOUCH),
]


@pytest.mark.parametrize(("path", "who", "viewport", "context"), PAGES,
                         ids=[f"{p}-{w or 'anonymous'}" for p, w, _v, _c in PAGES])
def test_the_page_in_chinese_has_no_untranslated_text(server, world, screenshot, path, who,
                                                      viewport, context):
    name = "zh" + (path.replace("/", "-") if path != "/" else "-duty") + f"-{who or 'anon'}"
    with browser_page(viewport, **ZH, **context) as browser:
        page = browser.page
        page.add_init_script(_PROBE)
        if who is None:
            page.goto(server.url + path)
        else:
            log_in(page, server.url + path, who)
            page.locator("#app-view").wait_for(state="visible", timeout=20_000)
        check(page, screenshot, name)
    assert browser.problems == []


def test_the_check_finds_an_untranslated_text():
    assert untranslated(["值班屏", "SOS 呼叫", "5 分钟前", "eldercare"]) == []
    assert untranslated(["确认 Acknowledge", "Log out"]) == ["Log out", "确认 Acknowledge"]
