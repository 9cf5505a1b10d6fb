"""The help screen: every key, where it works, and whether your role may use it."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from watchfloor.console.permissions import GUARDED

KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("?", "help.where.any", "key.help", "help"),
    ("ctrl+p", "help.where.any", "key.palette", "palette"),
    ("b", "help.where.any", "key.board", "board"),
    ("u", "help.where.any", "key.audit", "show_audit"),
    ("q", "help.where.any", "key.quit", "quit"),
    ("m", "help.where.any", "key.manual", "open_incident"),
    ("h", "help.where.any", "key.handover", "show_handover"),
    ("l", "help.where.any", "key.silences", "show_silences"),
    ("i", "help.where.any", "key.history", "show_history"),
    ("tab", "help.where.board", "key.focus", "focus"),
    ("enter", "help.where.board", "key.open", "open"),
    ("s", "help.where.board", "key.sort", "sort"),
    ("a", "help.where.incident", "key.ack", "acknowledge"),
    ("r", "help.where.incident", "key.resolve", "resolve"),
    ("n", "help.where.incident", "key.note", "add_note"),
    ("d", "help.where.incident", "key.step_done", "step_done"),
    ("e", "help.where.incident", "key.escalate", "escalate"),
    ("A", "help.where.incident", "key.approve", "approve"),
    ("p", "help.where.incident", "key.start", "start_playbook"),
    ("S", "help.where.incident", "key.silence", "silence"),
    ("k", "help.where.incident", "key.skip", "skip_step"),
    ("X", "help.where.incident", "key.abort", "abort_run"),
    ("R", "help.where.incident", "key.retry", "retry_step"),
    ("escape", "help.where.incident", "key.back", "back"),
    ("/", "help.where.audit", "key.filter", "filter"),
    ("v", "help.where.audit", "key.verify", "verify"),
    ("x", "help.where.silences", "key.expire", "expire"),
    ("g", "help.where.silences", "key.refresh", "refresh"),
    ("/", "help.where.history", "key.search", "focus_search"),
)
"""(key, where, what, action): guarded actions are marked as the screen below says."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", show=False)
    ]

    def compose(self) -> ComposeResult:
        app = self.app
        tr = app.tr  # type: ignore[attr-defined]
        table = Table(
            title=tr("help.heading"),
            caption=app.user_text(),  # type: ignore[attr-defined]
            expand=False,
            show_edge=False,
        )
        for heading in ("help.col.key", "help.col.where", "help.col.what"):
            table.add_column(tr(heading))
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        for key, where, what, action in KEYS:
            allowed = action not in GUARDED or _offered(app, below, action)
            label = tr(what) if allowed else f"{tr(what)} {tr('help.not_allowed')}"
            table.add_row(key, tr(where), label, style=None if allowed else "dim")
        with VerticalScroll(classes="modal help"):
            yield Static(table)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)


def _offered(app: Any, below: Screen[Any] | None, action: str) -> bool:
    """As the API told the screen below, else its overall answer (step keys: unjudged)."""
    if below is not None and hasattr(below, f"action_{action}"):
        return below.check_action(action, ()) is True
    return app.allowed.may_anywhere(action) is not False
