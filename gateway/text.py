"""Device text made safe for dead-letter reasons and log lines.

Everything a device sends (key names, values, topics) may end up in a dead-letter reason or a
log line. A newline there forges a log line, a NUL makes PostgreSQL refuse the row, and a huge
key floods both. `printable` is the one place that makes such text safe; the gateway applies it
to every reason and topic it hands on (`gateway.gateway.dead_letter`), and log calls that show
device input use it too.
"""

from __future__ import annotations

MAX_REASON_CHARS = 500
TRUNCATED = "… (truncated)"


def _escape(char: str) -> str:
    """`\\n`, `\\x00`, `\\u2028`: Python's own escape of a character that is not printable."""
    return repr(char)[1:-1]


def printable(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` as one printable line of at most `limit` characters.

    Control characters, line/paragraph separators, bidi overrides and every other
    non-printable code point are escaped (NUL becomes the four characters `\\x00`); text
    longer than `limit` is cut and marked. Printable text (the usual case) is returned as is.
    """
    if len(text) <= limit and text.isprintable():
        return text
    head = text[: limit + 1]
    out = "".join(c if c.isprintable() else _escape(c) for c in head)
    if len(out) <= limit and len(head) == len(text):
        return out
    return out[: limit - len(TRUNCATED)] + TRUNCATED
