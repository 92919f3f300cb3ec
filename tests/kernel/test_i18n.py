"""Texts marked for translation: English passes through, the template is kept current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from kernel import i18n

ROOT = Path(__file__).resolve().parents[2]


def test_english_is_the_marked_text_itself():
    assert i18n.N_("Fall detected") == "Fall detected"
    assert i18n.translate("Fall detected", "en") == "Fall detected"


def test_a_language_without_a_catalog_falls_back_to_english():
    assert i18n.translate("Fall detected", "xx-YY") == "Fall detected"


def test_chinese_comes_from_its_catalog():
    assert i18n.translate("Fall detected", "zh-CN") == "跌倒报警"
    assert i18n.translate("not a marked text", "zh-CN") == "not a marked text"


@pytest.mark.parametrize(("tag", "lang"), [
    ("zh", "zh-CN"), ("zh-cn", "zh-CN"), ("zh_CN", "zh-CN"), ("zh-Hans-CN", "zh-CN"),
    ("zh-TW", "zh-CN"), ("en", "en"), ("en-GB", "en"), ("fr", None), ("", None), (None, None),
    ("zh;q=1", None), ("../../etc", None)])
def test_a_tag_names_a_platform_language_or_none(tag, lang):
    assert i18n.supported(tag) == lang


@pytest.mark.parametrize(("header", "lang"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    ("fr-FR,zh;q=0.5", "zh-CN"), ("fr, de", "en"), ("", "en"), (None, "en"),
    ("en;q=0.2, zh;q=0.7", "zh-CN"), ("zh;q=0, en", "en"), ("zh;q=abc, en;q=0.1", "en"),
    ("*", "en")])
def test_the_browser_header_picks_the_language(header, lang):
    assert i18n.negotiate(header) == lang


def marked_texts() -> set[str]:
    """What `pybabel extract` with babel.cfg and the keywords (N_ in Python, _ in the
    templates, t in the pages' JavaScript) finds today."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(str(ROOT), method_map, options_map,
                             keywords={"N_": None, "_": None, "t": None})
    return {str(message) for _file, _line, message, _comments, _context in found}


def test_the_translation_template_lists_every_marked_text():
    with (i18n.LOCALE_DIR / "messages.pot").open("rb") as pot:
        template = {str(m.id) for m in read_po(pot) if m.id}
    # Out of date: regenerate with the command in babel.cfg.
    assert template == marked_texts()
    assert "Fall detected" in template


def test_a_translation_keeps_the_placeholders_of_its_text():
    """"{name} acknowledged" translated without {name} would fail at .format() time."""
    placeholder = re.compile(r"\{[a-z_0-9]*\}")
    wrong = {text: words for text, words in i18n.catalog("zh-CN").items()
             if sorted(placeholder.findall(text)) != sorted(placeholder.findall(words))}
    assert wrong == {}


def test_every_marked_text_has_its_chinese_translation():
    """A text added without its translation would show in English on a Chinese page:
    `pybabel update` (babel.cfg) adds it to the catalog, then translate it."""
    with (i18n.LOCALE_DIR / "messages.pot").open("rb") as pot:
        template = {str(m.id) for m in read_po(pot) if m.id}
    translated = i18n.catalog("zh-CN")
    missing = sorted(template - set(translated))
    assert missing == [], f"{len(missing)} untranslated in zh_CN, e.g. {missing[:10]}"
