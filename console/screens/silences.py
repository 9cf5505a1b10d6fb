"""The silences in force (``GET /v1/silences``), expired with ``x`` (``DELETE``).

Silences change rarely and are not on the live feed: the list is fetched when
the screen opens, after each expiry, and with ``g`` (refresh).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer

from watchfloor.console import format as fmt
from watchfloor.console.names import matchers_text
from watchfloor.console.screens.base import ConsoleScreen
from watchfloor.console.widgets.status_bar import StatusBar
from watchfloor.console.widgets.tables import StyledTable
from watchfloor.console.widgets.tile import Tile


class SilenceTable(StyledTable):
    """One row per silence: what it matches, until when, why, who."""

    def setup(self, tr: Any) -> None:
        self.tr = tr
        self.cursor_type = "row"
        for key, label in (("matchers", "col.matchers"), ("left", "col.left"),
                           ("reason", "col.reason"), ("by", "col.by")):  # fmt: skip
            self.add_column(tr(label), key=key)

    def show(self, silences: list[dict[str, Any]], now: float) -> None:
        self.rebuild((str(s.get("id")), self.cells(s, now)) for s in silences)

    def cells(self, silence: dict[str, Any], now: float) -> list[Any]:
        matchers = silence.get("matchers") or {}
        t = self.styled
        return [
            t(matchers_text(matchers, self.tr.lang)),
            t(fmt.countdown(silence.get("ends_at"), now, self.tr.lang)),
            t(fmt.truncate(str(silence.get("reason") or ""), 40)),
            t(str(silence.get("created_by") or "")),
        ]


class SilencesScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "key.back"),
        Binding("x", "expire", "key.expire"),
        Binding("g", "refresh", "key.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.silences: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        tr = self.console.tr
        yield StatusBar(f"{tr('app.title')} · {tr('silences.heading')}")
        yield Tile(SilenceTable(id="silences"), title=tr("silences.heading"), id="tile-silences")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(SilenceTable).setup(self.console.tr)
        self.query_one(SilenceTable).focus()
        self.action_refresh()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Expiring needs the same right as silencing (the API refuses the others anyway).
        return self.console.may("expire_silence") if action == "expire" else True

    def action_refresh(self) -> None:
        self.console.fetch(lambda api: api.silences(), self.loaded)

    def loaded(self, silences: list[dict[str, Any]]) -> None:
        if not self.alive:
            return
        self.silences = silences
        self.query_one(SilenceTable).show(silences, self.console.board.server_now(time.time()))

    def action_expire(self) -> None:
        chosen = self.query_one(SilenceTable).cursor_key()
        if chosen is not None:
            self.console.act("expire_silence", chosen, then=lambda _: self.action_refresh())
