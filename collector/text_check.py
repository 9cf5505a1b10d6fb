"""Strings that cannot be stored: lone surrogates from JSON ``\\ud800`` escapes.

JSON may escape a UTF-16 surrogate on its own (``"\\ud800"``); the standard
library decodes it into a Python string that no UTF-8 encoder accepts, so the
batch's msgpack encoding failed and the whole request answered 500. Such an
event is refused here on its own (index and field named) and the rest of the
batch is kept. msgpack bodies cannot carry them (their strings must be UTF-8),
and msgspec's JSON decoder refuses them, so only bodies that hold a surrogate
escape are walked.
"""

from __future__ import annotations

import re

from watchfloor.core.events import BatchResult, Event, FieldError

_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def may_hold_surrogates(body: bytes) -> bool:
    """False when a JSON body surely holds no surrogate escape (the fast path)."""
    return _SURROGATE_ESCAPE.search(body) is not None


def refuse_lone_surrogates(checked: BatchResult) -> int:
    """Move the events holding a string that is not valid Unicode to the errors."""
    keep, where, refused = [], [], 0
    for event, index in zip(checked.events, checked.indexes, strict=True):
        name = _bad_field(event)
        if name is None:
            keep.append(event)
            where.append(index)
            continue
        refused += 1
        checked.errors.append(
            FieldError(index, name, f"{name} holds a lone UTF-16 surrogate: not valid Unicode")
        )
    if refused:
        checked.events, checked.indexes = keep, where
        checked.errors.sort(key=lambda error: error.index)
    return refused


def _bad_field(event: Event) -> str | None:
    for name in event.__struct_fields__:
        value = getattr(event, name)
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None
