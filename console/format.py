"""Pure text formatting for the console: ages, durations, percentages, and
wide-character-aware truncation and padding.

Chinese characters take two terminal cells, so ``len()`` lies about width;
everything here measures with :func:`rich.cells.cell_len` so that columns of
mixed Chinese and Latin text line up.
"""

from __future__ import annotations

from rich.cells import cell_len

from watchfloor.core.durations import UNITS as UNITS
from watchfloor.core.durations import duration as duration

ELLIPSIS = "…"


def age(at: float | None, now: float, lang: str = "en") -> str:
    """How long ago ``at`` was, as a duration; ``—`` when unknown."""
    if at is None:
        return "—"
    return duration(now - float(at), lang)


def age_coarse(at: float | None, now: float, lang: str = "en") -> str:
    """An age that changes at most once a minute after the first minute (``42s``, ``3m``,
    ``2h14m``): a list of incidents stays calm instead of ticking every second."""
    if at is None:
        return "—"
    s = round(max(0.0, now - float(at)))
    if 60 <= s < 3600:
        return f"{s // 60}{UNITS.get(lang, UNITS['en'])[1]}"
    return duration(s, lang)


def countdown(deadline: float | None, now: float, lang: str = "en") -> str:
    """Time left until ``deadline`` (``4m10s``), or how late it is (``-1m02s``)."""
    if deadline is None:
        return "—"
    left = float(deadline) - now
    if left < 0:
        return "-" + duration(-left, lang)
    return duration(left, lang)


def percent(ratio: float | None) -> str:
    """``0.823`` -> ``82%``; ``—`` when unknown."""
    if ratio is None:
        return "—"
    return f"{round(float(ratio) * 100):d}%"


def truncate(text: str, width: int) -> str:
    """Cut ``text`` to at most ``width`` cells, ending with ``…`` when cut."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        w = cell_len(char)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + ELLIPSIS


def pad(text: str, width: int, align: str = "left") -> str:
    """Truncate and pad ``text`` to exactly ``width`` cells (``left`` or ``right``)."""
    cut = truncate(text, width)
    fill = " " * (width - cell_len(cut))
    return fill + cut if align == "right" else cut + fill


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float] | tuple[float, ...], width: int = 12) -> str:
    """The last ``width`` values as block characters scaled to their own maximum."""
    tail = [max(0.0, float(v)) for v in list(values)[-width:]]
    if not tail:
        return ""
    top = max(tail)
    if top <= 0:
        return SPARK_BLOCKS[0] * len(tail)
    steps = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[round(v / top * steps)] for v in tail)


def localized(value: object, lang: str) -> str:
    """A text that may come as ``{"zh": ..., "en": ...}`` (playbook titles) in ``lang``."""
    if isinstance(value, dict):
        return str(value.get(lang) or value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)
