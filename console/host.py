"""What the screens and the command palette ask of the console app, as a protocol.

The app imports its screens and its palette; typing them against this protocol rather
than ``ConsoleApp`` keeps that dependency one-way (no import circle, not even one hidden
under ``TYPE_CHECKING``). ``ConsoleApp`` is checked against it where it hands itself to
:func:`console.palette.palette_commands`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from textual.message import Message

from watchfloor.console.client import ApiClient
from watchfloor.console.i18n import Translator
from watchfloor.console.state import BoardState


class ConsoleHost(Protocol):
    tr: Translator
    board: BoardState
    playbooks: dict[str, dict[str, Any]]

    def act(
        self, name: str, *args: Any, then: Callable[[dict], object] | None = None, **kwargs: Any
    ) -> None: ...

    def fetch(self, call: Callable[[ApiClient], Awaitable[Any]], deliver: Any) -> None: ...

    def may(self, action: str) -> bool: ...

    def user_text(self) -> str: ...

    def duty_text(self) -> str: ...

    def link_text(self) -> tuple[str, str]: ...

    def playbook_title(self, run: dict[str, Any]) -> str: ...

    def step_title(self, run: dict[str, Any] | None, step: dict[str, Any]) -> str: ...

    def action_board(self) -> None: ...

    def action_help(self) -> None: ...

    def action_show_audit(self) -> None: ...

    def action_show_silences(self) -> None: ...

    def action_show_history(self) -> None: ...

    def action_show_handover(self) -> None: ...

    def action_open_incident(self) -> None: ...

    def post_message(self, message: Message) -> bool: ...

    def exit(self) -> None: ...
