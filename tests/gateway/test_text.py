"""Unit tests of gateway/text.py: device text made safe for reasons and log lines."""

from __future__ import annotations

import pytest

from gateway.text import MAX_REASON_CHARS, printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("movement: Input should be less than 100", "movement: Input should be less than 100"),
    ("a\nERROR fake line", "a\\nERROR fake line"),
    ("cr\rlf", "cr\\rlf"),
    ("nul\x00key", "nul\\x00key"),
    ("tab\there", "tab\\there"),
    ("esc\x1b[31mred", "esc\\x1b[31mred"),
    ("del\x7f", "del\\x7f"),
    ("line\u2028sep\u2029para\x85nel", "line\\u2028sep\\u2029para\\x85nel"),
    ("bidi\u202eevil", "bidi\\u202eevil"),
    ("Grüße 😀", "Grüße 😀"),
])
def test_control_characters_are_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_output_is_one_line_and_bounded() -> None:
    out = printable("\n" * 10_000)
    assert "\n" not in out
    assert len(out) <= MAX_REASON_CHARS
    assert out.endswith("(truncated)")


def test_long_text_is_cut_with_a_marker() -> None:
    out = printable("x" * 5000, limit=100)
    assert len(out) <= 100
    assert out.startswith("xxx")
    assert out.endswith("(truncated)")
