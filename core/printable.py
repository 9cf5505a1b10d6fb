"""Text that is safe to show a human: control characters made visible, never obeyed.

Audit records keep what a client sent (an ``auth.failed`` target is the path an
unauthenticated caller asked for), so a record can carry ``ESC [2K`` or a
bidirectional override. Printed raw, those erase or reorder lines on the
security officer's terminal and hide what happened. :func:`printable` is the
one escape every human-facing output uses (``watchfloor audit tail`` and
``export``'s messages, token listings, the console's audit screen): C0/C1
controls, DEL, format characters (bidi overrides, zero-width) and line/paragraph
separators become ``\\x1b`` / ``\\u202e`` escapes; everything else, Chinese text
included, is left as it is.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Final

_HIDDEN: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Unicode categories that steer a terminal or hide text instead of showing it."""


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: Any) -> str:
    """``str(value)`` with every control or invisible format character escaped."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():  # the common case, checked in C
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _HIDDEN else c for c in text)
