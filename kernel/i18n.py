"""Words people read, written once in English and marked for translation (gettext).

Every label of the platform's vocabulary (alert types, severities, statuses, outcomes,
roles) is a plain English string wrapped in `N_()`: the marker changes nothing at run time,
but `pybabel extract` (babel.cfg, see docs/dashboard.md) collects every marked string into
kernel/locale/messages.pot, the template translators start from. A label is translated where
it is shown, with `translate(text, lang)`, so one definition serves every language.

Part of the shared kernel: every feature package may use it; it imports none of them.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LANGUAGE = "en"
# The languages the platform speaks. English is the source language (no catalog needed);
# Simplified Chinese ("zh-CN", catalog kernel/locale/zh_CN/LC_MESSAGES/messages.mo) is added
# together with its translations.
LANGUAGES: tuple[str, ...] = (DEFAULT_LANGUAGE,)


def N_(message: str) -> str:  # noqa: N802 (the conventional gettext marker name)
    """Mark `message` for extraction; it stays English until `translate` shows it."""
    return message


@lru_cache(maxsize=8)
def _catalog(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of `lang` (a BCP 47 tag such as zh-CN), or none (English)."""
    locale = lang.replace("-", "_")
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[locale], fallback=True)


def translate(message: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """`message` (an English text marked with `N_`) in `lang`; English when untranslated."""
    if lang == DEFAULT_LANGUAGE:
        return message
    return _catalog(lang).gettext(message)
