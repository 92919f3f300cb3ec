"""Texts marked for translation: English passes through, the template is kept current."""

from __future__ import annotations

from pathlib import Path

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


def marked_texts() -> set[str]:
    """What `pybabel extract` with babel.cfg and the N_ keyword finds today."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords={"N_": None})
    return {str(message) for _file, _line, message, _comments, _context in found}


def test_the_translation_template_lists_every_marked_text():
    with (i18n.LOCALE_DIR / "messages.pot").open("rb") as pot:
        template = {str(m.id) for m in read_po(pot) if m.id}
    # Out of date: regenerate with the command in babel.cfg.
    assert template == marked_texts()
    assert "Fall detected" in template
