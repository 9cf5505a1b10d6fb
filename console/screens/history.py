"""Incident history: every incident, resolved ones included, found by text, kind and time.

The list comes from ``GET /v1/incidents?state=all`` with the search box's terms:
plain words are ``q`` (a substring of the subject or the title), ``kind:sla``,
``since:2026-11-11`` and ``until:...`` (a date is the site's local midnight) narrow
it further. ``Enter`` on a row opens the incident. Titles are shown in the
interface's language, as on the board.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Input

from watchfloor.console import format as fmt
from watchfloor.console.messages import IncidentOpened
from watchfloor.console.screens.base import ConsoleScreen
from watchfloor.console.titles import incident_title
from watchfloor.console.widgets.status_bar import StatusBar
from watchfloor.console.widgets.tables import StyledTable
from watchfloor.console.widgets.tile import Tile

HISTORY_LIMIT = 200
FIELDS = ("kind", "since", "until")


def search_params(text: str) -> dict[str, str]:
    """The API query of a search text: ``kind:x since:d until:d`` and the rest as ``q``."""
    params: dict[str, str] = {"state": "all", "limit": str(HISTORY_LIMIT)}
    words = []
    for word in text.split():
        name, colon, value = word.partition(":")
        if colon and name in FIELDS and value:
            params[name] = _time(value) if name != "kind" else value
        else:
            words.append(word)
    if words:
        params["q"] = " ".join(words)
    return params


def _time(value: str) -> str:
    """A bare date is local midnight (the site's day); anything else goes as typed."""
    try:
        return str(datetime.strptime(value, "%Y-%m-%d").timestamp())
    except ValueError:
        return value


class HistoryTable(StyledTable):
    def setup(self, tr: Any) -> None:
        self.tr = tr
        self.cursor_type = "row"
        for key, label in (("opened", "col.opened"), ("severity", "col.severity"),
                           ("title", "col.title"), ("state", "col.state")):  # fmt: skip
            self.add_column(tr(label), key=key)

    def show(self, incidents: list[dict[str, Any]]) -> None:
        self.rebuild((str(i.get("id")), self.cells(i)) for i in incidents)

    def cells(self, inc: dict[str, Any]) -> list[Any]:
        severity, state = inc.get("severity", "info"), inc.get("state", "open")
        opened = inc.get("opened_at")
        t = self.styled
        return [
            t(time.strftime("%m-%d %H:%M", time.localtime(opened)) if opened else ""),
            t(self.tr(f"sev.{severity}"), f"sev--{severity}"),
            t(fmt.truncate(incident_title(inc, self.tr.lang), 70)),
            t(self.tr(f"state.{state}"), f"state--{state}"),
        ]


class HistoryScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "key.back"),
        Binding("slash", "focus_search", "key.search"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.incidents: list[dict[str, Any]] = []
        self.params: dict[str, str] = search_params("")

    def compose(self) -> ComposeResult:
        tr = self.console.tr
        yield StatusBar(f"{tr('app.title')} · {tr('history.heading')}")
        yield Input(placeholder=tr("history.search"), id="history-search")
        yield Tile(HistoryTable(id="history"), title=tr("history.heading"), id="tile-history")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(HistoryTable).setup(self.console.tr)
        self.query_one(HistoryTable).focus()
        self.search("")

    def action_focus_search(self) -> None:
        self.query_one("#history-search", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search(event.value)
        self.query_one(HistoryTable).focus()

    def search(self, text: str) -> None:
        params = self.params = search_params(text)
        self.console.fetch(lambda api: api.incidents(params), self.loaded)

    def loaded(self, incidents: list[dict[str, Any]]) -> None:
        if self.alive:
            self.incidents = incidents
            self.query_one(HistoryTable).show(incidents)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(IncidentOpened(str(event.row_key.value)))
