"""Words people read, written once in English and translated from gettext catalogs.

Every text a person reads is a plain English string marked for translation: `N_()` in
Python (the marker changes nothing at run time), `_()` in the page templates and `t()` in
the pages' JavaScript (static/i18n.js). `pybabel extract` (babel.cfg) collects every marked
string into kernel/locale/messages.pot, the template translators start from; each language
has its catalog, kernel/locale/<ll_CC>/LC_MESSAGES/messages.po (docs/i18n.md). A text is
translated where it is shown, with `translate(text, lang)`, so one definition serves every
language; a text with placeholders is translated first and filled in after
(`translate(N_("… {name} …"), lang).format(name=…)`), so translators see the whole sentence.

The catalogs are read from the `.po` files with Babel when first needed (no compiled `.mo`
to keep in step); an entry without a translation, or marked fuzzy, falls back to English.

Part of the shared kernel: every feature package may use it; it imports none of them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from babel.messages.pofile import read_po

logger = logging.getLogger(__name__)

DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LANGUAGE = "en"
# The languages the platform speaks (BCP 47 tags). English is the source language (no
# catalog); Simplified Chinese reads kernel/locale/zh_CN/LC_MESSAGES/messages.po.
LANGUAGES: tuple[str, ...] = (DEFAULT_LANGUAGE, "zh-CN")
# Each language in its own words, for language pickers (never translated).
LANGUAGE_NAMES: Mapping[str, str] = MappingProxyType({"en": "English", "zh-CN": "简体中文"})

_TAG = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")


def N_(message: str) -> str:  # noqa: N802 (the conventional gettext marker name)
    """Mark `message` for extraction; it stays English until `translate` shows it."""
    return message


def catalog_path(lang: str) -> Path:
    """Where the catalog of `lang` lives (zh-CN → locale/zh_CN/LC_MESSAGES/messages.po)."""
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=8)
def catalog(lang: str) -> Mapping[str, str]:
    """The translations of `lang`: English text → translated text, only the entries that
    have a translation that is not fuzzy (empty for English or a language without one)."""
    path = catalog_path(lang)
    if lang == DEFAULT_LANGUAGE or not path.is_file():
        return MappingProxyType({})
    with path.open("rb") as po:
        messages = read_po(po, locale=lang.replace("-", "_"))
    found = {str(m.id): str(m.string) for m in messages
             if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
             and not m.fuzzy}
    logger.debug("catalog %s: %d translations", lang, len(found))
    return MappingProxyType(found)


def translate(message: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """`message` (an English text marked with `N_`) in `lang`; English when untranslated."""
    if lang == DEFAULT_LANGUAGE:
        return message
    return catalog(lang).get(message, message)


class Said(str):
    """A sentence that remembers how it was said, so it can be said again in another language.

    It *is* the English text (`Said(N_("try again in {minutes} minutes"), minutes=5)` equals
    "try again in 5 minutes", so code and tests that treat it as a string are unchanged), and
    keeps its marked template and values: `said_in(lang)` translates the template first and
    fills the values in after, as the catalog holds the template, never a filled-in sentence.
    A value that is itself `Said` (a marked word such as "Alert") is said in `lang` too; any
    other value is data and stays as it is. Raised texts use it (HTTP details, refusals):
    they are made where the values are known and translated where the reader is known."""

    template: str
    values: Mapping[str, object]

    def __new__(cls, template: str, /, **values: object) -> Said:
        said = super().__new__(cls, template.format(**values) if values else template)
        said.template = template
        said.values = MappingProxyType(values)
        return said

    @classmethod
    def word(cls, shown: str, marked: str) -> Said:
        """A value written `shown` in English (an API value such as "care_worker", kept as
        it always was) and `marked` (its label, e.g. "Care worker") in other languages."""
        said = super().__new__(cls, shown)
        said.template = marked
        said.values = MappingProxyType({})
        return said

    def said_in(self, lang: str) -> str:
        """This sentence in `lang` (the English text itself for English)."""
        if lang == DEFAULT_LANGUAGE:
            return str(self)
        words = translate(self.template, lang)
        if not self.values:
            return words
        return words.format(**{name: say(value, lang) if isinstance(value, Said) else value
                               for name, value in self.values.items()})


def say(text: str, lang: str) -> str:
    """`text` in `lang`: a `Said` sentence with its values, a marked fixed text from the
    catalog; a text nobody marked stays as it is (English)."""
    return text.said_in(lang) if isinstance(text, Said) else translate(text, lang)


def supported(tag: str | None) -> str | None:
    """The platform language a BCP 47 tag asks for, or None: "zh", "zh-cn", "zh_CN",
    "zh-Hans-CN" (and the Traditional variants, which read Simplified far better than
    English) are Chinese; "en-GB" is English."""
    if not tag or not _TAG.match(tag.strip()):
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def negotiate(accept_language: str | None) -> str:
    """The platform language an HTTP Accept-Language header prefers (q-values honoured,
    the first listed winning a tie); English when it names none the platform speaks."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = supported(tag)
        if lang is not None and quality > 0:
            ranked.append((-quality, index, lang))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE
