"""What every console screen shares: the status bar, the 1 Hz tick, binding translation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from textual.dom import DOMNode
from textual.screen import Screen

from watchfloor.console.host import ConsoleHost
from watchfloor.console.state import Dirty
from watchfloor.console.widgets.status_bar import StatusBar


def translate_bindings(node: DOMNode, tr: Callable[[str], str]) -> None:
    """Show binding descriptions (``key.ack``) in the chosen language.

    Bindings are declared once at class level with string ids; Textual copies
    them per instance into ``_bindings``, which is where the Footer and the
    help screen read them, so the translation is done on that copy.
    """
    table = node._bindings.key_to_bindings
    for key, bindings in table.items():
        table[key] = [
            replace(b, description=tr(b.description)) if b.description.startswith("key.") else b
            for b in bindings
        ]


class ConsoleScreen(Screen):
    """A screen that follows the board model (screens with guarded keys ask the API)."""

    pending: Dirty

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending = Dirty(reset=True)
        self.ready = False
        """Mounted: its widgets exist (changes may arrive before that)."""

    @property
    def console(self) -> ConsoleHost:
        return cast(ConsoleHost, self.app)

    def on_mount(self) -> None:
        # Textual calls the on_mount of every class in the MRO: subclasses do not call super().
        translate_bindings(self, self.console.tr)
        self.refresh_bindings()
        self.ready = True
        self.sync_status()
        self.flush()

    def sync_status(self) -> None:
        bars = self.query(StatusBar)
        if not bars:
            return
        bar = bars.first()
        bar.show_user(self.console.user_text())
        bar.show_duty(self.console.duty_text())
        bar.show_link(*self.console.link_text())

    @property
    def alive(self) -> bool:
        """Mounted and not being taken down (at exit the children go before the screen).

        Textual is pinned (8.2.8): ``_closing`` and ``_pruning`` are its own flags.
        """
        return self.ready and self.is_attached and not (self._closing or self._pruning)

    def board_updated(self, dirty: Dirty) -> None:
        """Called by the app for each model update; drawn now if visible, else later."""
        self.pending.merge(dirty)
        if self.alive and self.is_current:
            self.flush()

    def on_screen_resume(self) -> None:
        if self.alive:
            self.sync_status()
            self.flush()

    def flush(self) -> None:
        dirty, self.pending = self.pending, Dirty()
        if dirty and self.alive:
            self.draw(dirty)

    def draw(self, dirty: Dirty) -> None:
        """Bring the widgets up to date with the model (override)."""

    def tick(self, now: float) -> None:
        """Once a second: ages, countdowns, staleness (override, keep cheap)."""
        self.sync_status()
