"""Which language a request is answered in, and the words a page's JavaScript needs.

A page is rendered in its reader's language before anyone has logged in (the token lives in
the page, not in a cookie), so the choice is made from what the browser sends:
1. the `eldercare_lang` cookie, which the pages set after login from the person's own
   setting (`PUT /api/v1/me/language`; static/i18n.js), so a choice follows them to any
   browser they log in from;
2. else the browser's Accept-Language (the default for someone who never chose);
3. else English.
API calls from the pages send the page's language as Accept-Language (static/api.js), so
their messages come back in the same language.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from babel.messages.extract import extract_from_dir
from fastapi import Request

from kernel.i18n import catalog, negotiate, supported

logger = logging.getLogger(__name__)

COOKIE = "eldercare_lang"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def request_language(request: Request) -> str:
    """The language to answer `request` in (cookie, then Accept-Language, then English)."""
    chosen = supported(request.cookies.get(COOKIE))
    if chosen is not None:
        return chosen
    return negotiate(request.headers.get("accept-language"))


def api_language(request: Request) -> str:
    """The language of an API answer: what the caller's Accept-Language asks for (the pages
    send their own language there), else the cookie, else English."""
    if request.headers.get("accept-language"):
        return negotiate(request.headers.get("accept-language"))
    return request_language(request)


@lru_cache(maxsize=1)
def _script_texts() -> frozenset[str]:
    """Every text the pages' JavaScript marks with t() (the same extraction pybabel runs)."""
    found = extract_from_dir(str(STATIC_DIR), [("**.js", "javascript")], {},
                             keywords={"t": None})
    return frozenset(str(message) for _file, _line, message, _comments, _context in found
                     if isinstance(message, str))


@lru_cache(maxsize=8)
def script_catalog(lang: str) -> Mapping[str, str]:
    """The translations a page's JavaScript needs in `lang` (embedded in every page, so
    the words are there before any request could fail; only the scripts' own texts, to keep
    the pages small)."""
    words = catalog(lang)
    return {text: words[text] for text in sorted(_script_texts()) if text in words}
