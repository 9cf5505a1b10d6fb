"""The connection indicator: is the live feed up, and since when has it been quiet."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class ConnectionIndicator(Static):
    """``● live`` / ``◌ connecting…`` / ``✕ disconnected, retry in 4s`` (CSS: -live, -down)."""

    DEFAULT_CSS = "ConnectionIndicator { width: auto; padding: 0 1; }"

    def show_state(self, state: str, text: str) -> None:
        marks = {"live": "●", "connecting": "◌", "down": "✕"}
        self.set_class(state == "live", "-live")
        self.set_class(state == "down", "-down")
        self.set_class(state == "connecting", "-connecting")
        self.update(Text(f"{marks.get(state, '?')} {text}"))  # a reason may hold "[...]"
