"""Run progress as text: a small bar of done steps and the count."""

from __future__ import annotations


def progress_bar(done: int, total: int, width: int = 8) -> str:
    """``▰▰▰▱▱▱▱▱ 3/8``; an empty run shows ``—``."""
    if total <= 0:
        return "—"
    filled = round(done / total * width)
    return "▰" * filled + "▱" * (width - filled) + f" {done}/{total}"
