"""Issue 14's rule for the pages: times are shown in the site's zone, 24-hour, through the one
formatter (static/time.js: siteTime and its variants). A call that formats or reads a time in
the browser's zone anywhere else would bring back "the browser in one place, the site in
another", so this test fails on it."""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.app import STATIC_DIR

# Formatting in the browser's locale and zone, or reading a Date's fields in the browser's zone
# (the getUTC* getters are zone-free and allowed).
BROWSER_TIME = re.compile(
    r"\.toLocale(?:Date|Time)?String\s*\(|\.get(?:Hours|Minutes|Seconds|Date|Day|Month|FullYear)"
    r"\s*\(")
ALLOWED = {"time.js"}  # the one formatter


def browser_time_calls(script: Path) -> list[str]:
    """Lines of `script` (as "name:line: text") that format or read a time in the browser's
    zone."""
    return [f"{script.name}:{number}: {line.strip()}"
            for number, line in enumerate(script.read_text().splitlines(), start=1)
            if BROWSER_TIME.search(line) and not line.lstrip().startswith(("//", "*"))]


def test_no_page_script_formats_times_outside_the_one_formatter() -> None:
    scripts = sorted(STATIC_DIR.glob("*.js"))
    assert any(s.name == "time.js" for s in scripts)
    found = [hit for script in scripts if script.name not in ALLOWED
             for hit in browser_time_calls(script)]
    assert found == [], ("format times with siteTime/siteClock/siteDate/siteWhen from "
                         "static/time.js (issue 14: the site's zone, 24 h):\n" + "\n".join(found))


def test_the_check_catches_each_form(tmp_path: Path) -> None:
    """The pattern itself: every browser-zone call is caught, the UTC getters are not."""
    script = tmp_path / "page.js"
    script.write_text("\n".join([
        "a.toLocaleString();", "a.toLocaleTimeString([], {});", "a.toLocaleDateString('en');",
        "d.getHours();", "d.getMinutes()", "d.getDate()", "d.getDay()", "d.getMonth()",
        "d.getFullYear()", "d.getUTCHours();", "n.toFixed(1);", "// d.getHours() in a comment"]))
    assert [hit.split(":")[1] for hit in browser_time_calls(script)] == [
        str(n) for n in range(1, 10)]
