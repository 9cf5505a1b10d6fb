"""Compact durations in each interface language: ``42s``, ``6m36s`` / ``42秒``, ``6分36秒``.

One definition for the edges that write durations (the console, notifications of a
Chinese site).
"""

from __future__ import annotations

UNITS = {"en": ("s", "m", "h", "d"), "zh": ("秒", "分", "小时", "天")}
"""Second, minute, hour, day in each interface language (``6m36s``, ``6分36秒``)."""


def duration(seconds: float | None, lang: str = "en") -> str:
    """A compact duration: ``42s``, ``3m05s``, ``2h14m``, ``3d4h`` (zh: ``6分36秒``)."""
    if seconds is None:
        return "—"
    sec, mins, hours, days = UNITS.get(lang, UNITS["en"])
    s = round(max(0.0, float(seconds)))
    two = "02d" if lang == "en" else "d"  # zh reads 6分5秒, not 6分05秒
    if s < 60:
        return f"{s}{sec}"
    if s < 3600:
        return f"{s // 60}{mins}{s % 60:{two}}{sec}"
    if s < 86400:
        return f"{s // 3600}{hours}{(s % 3600) // 60:{two}}{mins}"
    return f"{s // 86400}{days}{(s % 86400) // 3600}{hours}"
