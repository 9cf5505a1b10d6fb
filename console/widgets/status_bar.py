"""The top line of every screen: product, screen name, who is on duty, who is signed in."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from watchfloor.console.widgets.connection import ConnectionIndicator


class StatusBar(Horizontal):
    """Title on the left; who is on duty, the user and the connection indicator on the right."""

    DEFAULT_CSS = """
    StatusBar { height: 1; dock: top; }
    StatusBar #status-title { width: 1fr; padding: 0 1; text-style: bold; }
    StatusBar #status-duty { width: auto; padding: 0 1; }
    StatusBar #status-user { width: auto; padding: 0 1; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static(Text(self._title), id="status-title")
        yield Static("", id="status-duty")
        yield Static("", id="status-user")
        yield ConnectionIndicator("", id="status-conn")

    def show_user(self, text: str) -> None:
        self.query_one("#status-user", Static).update(Text(text))

    def show_duty(self, text: str) -> None:
        """Who is on duty now (from ``GET /v1/roster``), empty when no roster is known."""
        self.query_one("#status-duty", Static).update(Text(text))

    def show_link(self, state: str, text: str) -> None:
        self.query_one(ConnectionIndicator).show_state(state, text)
