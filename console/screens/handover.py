"""The handover screen (交接): the shift's report, the outgoing duty manager's words, sign-off.

It reads ``GET /v1/handover`` (the report as Markdown, times in the site's zone),
saves the notes and improvement suggestions with ``PUT /v1/handover/notes``
(``ctrl+s``) and signs as the incoming duty manager with
``POST /v1/handover/sign`` (``ctrl+g``); the API refuses the author's own
signature, and that refusal reaches the one error funnel like any other.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Label, Static

from watchfloor.console.screens.base import ConsoleScreen
from watchfloor.console.widgets.status_bar import StatusBar
from watchfloor.core.printable import printable


class HandoverScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "key.back"),
        Binding("ctrl+s", "save", "key.save_notes", priority=True),
        Binding("ctrl+g", "sign", "key.sign", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: dict[str, Any] = {}
        self.markdown = ""
        self.signed: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        tr = self.console.tr
        yield StatusBar(tr("app.title") + " · " + tr("key.handover"))
        yield Static(tr("handover.loading"), id="handover-title")
        yield Label(tr("handover.notes"))
        yield Input(id="handover-notes", placeholder=tr("handover.notes"))
        yield Label(tr("handover.suggestions"))
        yield Input(id="handover-suggestions", placeholder=tr("handover.suggestions"))
        with VerticalScroll(id="handover-report"):
            yield Static("", id="handover-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.console.fetch(lambda api: api.request("GET", "/v1/handover"), self._show)

    def _show(self, answer: dict[str, Any]) -> None:
        self.report, self.markdown = answer.get("report", {}), answer.get("markdown", "")
        if not self.alive:
            return
        first = self.markdown.split("\n", 1)[0].lstrip("# ")
        self.query_one("#handover-title", Static).update(printable(first))
        self.query_one("#handover-text", Static).update(self.markdown)
        for name in ("notes", "suggestions"):
            field = self.query_one(f"#handover-{name}", Input)
            if not field.value:
                field.value = self.report.get(name) or ""

    def action_save(self) -> None:
        body = {
            "notes": self.query_one("#handover-notes", Input).value,
            "suggestions": self.query_one("#handover-suggestions", Input).value,
        }

        def saved(_: dict[str, Any]) -> None:
            self.app.notify(self.console.tr("handover.saved"))
            self.reload()

        self.console.fetch(lambda api: api.request("PUT", "/v1/handover/notes", body), saved)

    def action_sign(self) -> None:
        def signed(entry: dict[str, Any]) -> None:
            self.signed = entry
            tr = self.console.tr
            self.app.notify(tr("handover.signed", id=entry["id"], who=entry["signed_by"]))
            if self.alive:
                self.query_one("#handover-text", Static).update(entry.get("markdown", ""))

        self.console.fetch(lambda api: api.request("POST", "/v1/handover/sign"), signed)
