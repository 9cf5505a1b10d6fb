"""The top line of every screen: product, screen name, who is signed in, the link."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from watchfloor.console.widgets.connection import ConnectionIndicator


class StatusBar(Horizontal):
    """Title on the left; user and connection indicator on the right."""

    DEFAULT_CSS = """
    StatusBar { height: 1; dock: top; }
    StatusBar #status-title { width: 1fr; padding: 0 1; text-style: bold; }
    StatusBar #status-user { width: auto; padding: 0 1; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static(Text(self._title), id="status-title")
        yield Static("", id="status-user")
        yield ConnectionIndicator("", id="status-conn")

    def show_user(self, text: str) -> None:
        self.query_one("#status-user", Static).update(Text(text))

    def show_link(self, state: str, text: str) -> None:
        self.query_one(ConnectionIndicator).show_state(state, text)
