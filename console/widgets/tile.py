"""A stale-aware tile: a bordered area whose title shows the age of its data.

A tile turns visibly stale (CSS class ``-stale``) when its source stops
reporting or the connection is down; the screen decides, the tile shows it.
"""

from __future__ import annotations

from typing import Any

from textual.containers import Vertical


class Tile(Vertical):
    """A titled container: ``Queues · 3s ago`` or ``Queues · STALE 2m10s ago``."""

    def __init__(self, *children: Any, title: str, **kwargs: Any) -> None:
        super().__init__(*children, **kwargs)
        self.base_title = title
        self.border_title = title
        self.stale = False

    def show_freshness(self, age_text: str, stale: bool, stale_text: str) -> None:
        self.stale = stale
        self.set_class(stale, "-stale")
        age = f"{stale_text} {age_text}" if stale else age_text
        self.border_title = f"{self.base_title} · {age}"
